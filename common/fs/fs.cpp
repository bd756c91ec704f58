#include "common/fs/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <system_error>

namespace aibox::fs {
namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path) {
  throw std::system_error(errno, std::system_category(), what + " " + path.string());
}

}  // namespace

void writeFileAtomic(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  std::random_device random;
  auto temp = path;
  temp += ".tmp-" + std::to_string(random());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    fail("create", temp);
  }
  auto cleanup = [fd, &temp](const char* what) {
    int saved = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    errno = saved;
    fail(what, temp);
  };
  if (::fchmod(fd, mode) != 0) {  // the umask may have narrowed or widened nothing, but be exact
    cleanup("chmod");
  }
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      cleanup("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    cleanup("fsync");
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(temp.c_str());
    errno = saved;
    fail("rename to", path);
  }
  auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
}

void makeDirectories(const std::filesystem::path& dir, mode_t mode) {
  std::filesystem::create_directories(dir);
  if (::chmod(dir.c_str(), mode) != 0) {
    fail("chmod", dir);
  }
}

}  // namespace aibox::fs
