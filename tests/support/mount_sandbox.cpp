#include "tests/support/mount_sandbox.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <system_error>

namespace aibox::test {
namespace {

std::string failure(const std::string& what) {
  return what + ": " + std::error_code(errno, std::generic_category()).message();
}

bool writeProcFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

std::string enterOnce() {
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWNS) != 0) {
    if (errno != EPERM) {
      return failure("unshare(CLONE_NEWNS)");
    }
    // Not privileged: a user namespace grants the mount rights inside it.
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
      return failure("unshare(CLONE_NEWUSER | CLONE_NEWNS)");
    }
    if (!writeProcFile("/proc/self/setgroups", "deny") ||
        !writeProcFile("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
        !writeProcFile("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) {
      return "cannot write the uid/gid maps of the user namespace";
    }
  }
  // Without this, mounts would propagate back to the host's shared mounts.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return failure("making / private");
  }
  return {};
}

}  // namespace

std::string enterPrivateMountNamespace() {
  static const std::string error = enterOnce();
  return error;
}

Mount::Mount(std::uint64_t tmpfsBytes, const std::filesystem::path& onto) : onto_(onto) {
  error_ = enterPrivateMountNamespace();
  if (!error_.empty()) {
    return;
  }
  std::string options = "size=" + std::to_string(tmpfsBytes) + ",mode=0750";
  if (::mount("tmpfs", onto.c_str(), "tmpfs", 0, options.c_str()) != 0) {
    error_ = failure("mounting a tmpfs over " + onto.string());
    return;
  }
  mounted_ = true;
}

Mount::Mount(const std::filesystem::path& from, const std::filesystem::path& onto) : onto_(onto) {
  error_ = enterPrivateMountNamespace();
  if (!error_.empty()) {
    return;
  }
  if (::mount(from.c_str(), onto.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    error_ = failure("bind-mounting " + from.string() + " over " + onto.string());
    return;
  }
  mounted_ = true;
}

Mount::~Mount() {
  if (mounted_) {
    ::umount2(onto_.c_str(), MNT_DETACH);
  }
}

}  // namespace aibox::test
