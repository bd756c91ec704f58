#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "agent/models/models.hpp"

namespace aibox::agent::models {
namespace {

constexpr std::size_t kBuffers = 4;

std::string hex(const unsigned char* bytes, unsigned n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 0xf];
  }
  return out;
}

}  // namespace

bool isDigest(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool isName(std::string_view text) {
  auto plain = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return !text.empty() && text.size() <= 64 && plain(text.front()) &&
         std::all_of(text.begin(), text.end(),
                     [&plain](char c) { return plain(c) || c == '.' || c == '_' || c == '-'; });
}

struct HashingWriter::Digest {
  Digest() : context(EVP_MD_CTX_new()) {
    if (context == nullptr || EVP_DigestInit_ex(context, EVP_sha256(), nullptr) != 1) {
      throw std::runtime_error("OpenSSL cannot start a SHA-256 digest");
    }
  }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  ~Digest() { EVP_MD_CTX_free(context); }
  void update(const char* data, std::size_t n) { EVP_DigestUpdate(context, data, n); }
  std::string final() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned n = 0;
    EVP_DigestFinal_ex(context, out.data(), &n);
    return hex(out.data(), n);
  }
  EVP_MD_CTX* context;
};

HashingWriter::HashingWriter(int fd) : fd_(fd), digest_(std::make_unique<Digest>()) {
  for (std::size_t i = 0; i < kBuffers; ++i) {
    storage_.push_back(std::make_unique<char[]>(kBufferBytes));
    free_.push_back(storage_.back().get());
  }
  writer_ = std::jthread([this] { writerLoop(); });
}

HashingWriter::~HashingWriter() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  changed_.notify_all();
}

void HashingWriter::writerLoop() {
  while (true) {
    std::pair<char*, std::size_t> job;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return !full_.empty() || done_; });
      if (full_.empty()) {
        return;
      }
      job = full_.front();
    }
    std::size_t written = 0;
    int error = 0;
    while (written < job.second) {
      ssize_t n = ::write(fd_, job.first + written, job.second - written);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        error = n < 0 ? errno : EIO;
        break;
      }
      written += static_cast<std::size_t>(n);
    }
    if (error == 0) {
      // Start writing this block to disk now, and wait for the one before: the disk works
      // while the next blocks are hashed, dirty pages stay bounded, and the final fsync finds
      // little left to do.
      auto offset = static_cast<off64_t>(offset_);
      ::sync_file_range(fd_, offset, static_cast<off64_t>(written), SYNC_FILE_RANGE_WRITE);
      if (offset > 0) {
        auto previous = std::max<off64_t>(0, offset - static_cast<off64_t>(kBufferBytes));
        ::sync_file_range(
            fd_, previous, offset - previous,
            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      }
      offset_ += written;
    }
    {
      std::lock_guard lock(mutex_);
      full_.pop_front();
      free_.push_back(job.first);
      if (error != 0 && error_ == 0) {
        error_ = error;
      }
    }
    changed_.notify_all();
  }
}

void HashingWriter::throwIfFailed() {
  if (error_ != 0) {
    throw std::system_error(
        error_, std::generic_category(),
        error_ == ENOSPC ? "the disk of the model store is full" : "cannot write the model file");
  }
}

std::uint64_t HashingWriter::continueFile() {
  auto block = std::make_unique<char[]>(kBufferBytes);
  std::uint64_t offset = 0;
  while (true) {
    ssize_t n = ::pread(fd_, block.get(), kBufferBytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw std::system_error(errno, std::generic_category(), "cannot read the partial file");
    }
    if (n == 0) {
      break;
    }
    digest_->update(block.get(), static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot seek the partial file");
  }
  bytes_ = offset;
  offset_ = offset;
  return offset;
}

std::span<char> HashingWriter::buffer() {
  if (current_ == nullptr) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !free_.empty() || error_ != 0; });
    throwIfFailed();
    current_ = free_.front();
    free_.pop_front();
    filled_ = 0;
  }
  return {current_ + filled_, kBufferBytes - filled_};
}

void HashingWriter::commit(std::size_t bytes) {
  if (bytes == 0 || current_ == nullptr) {
    return;
  }
  digest_->update(current_ + filled_, bytes);
  filled_ += bytes;
  bytes_ += bytes;
  if (filled_ == kBufferBytes) {
    {
      std::lock_guard lock(mutex_);
      full_.emplace_back(current_, filled_);
    }
    changed_.notify_all();
    current_ = nullptr;
  }
}

void HashingWriter::append(std::string_view data) {
  while (!data.empty()) {
    auto room = buffer();
    std::size_t n = std::min(room.size(), data.size());
    std::copy_n(data.data(), n, room.data());
    commit(n);
    data.remove_prefix(n);
  }
}

std::string HashingWriter::finish() {
  {
    std::unique_lock lock(mutex_);
    if (current_ != nullptr && filled_ > 0) {
      full_.emplace_back(current_, filled_);
    } else if (current_ != nullptr) {
      free_.push_back(current_);
    }
    current_ = nullptr;
    done_ = true;
  }
  changed_.notify_all();
  writer_.join();
  throwIfFailed();
  if (::fsync(fd_) != 0) {
    throw std::system_error(errno, std::generic_category(), "cannot sync the model file");
  }
  return digest_->final();
}

std::string hashFile(const std::filesystem::path& file, const std::atomic<bool>* cancel,
                     std::atomic<std::uint64_t>* progress) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot open " + file.string());
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  HashingWriter::Digest digest;
  auto buffer = std::make_unique<char[]>(HashingWriter::kBufferBytes);
  while (true) {
    if (cancel != nullptr && cancel->load()) {
      ::close(fd);
      throw std::runtime_error("cancelled");
    }
    ssize_t n = ::read(fd, buffer.get(), HashingWriter::kBufferBytes);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      int error = errno;
      ::close(fd);
      throw std::system_error(error, std::generic_category(), "cannot read " + file.string());
    }
    if (n == 0) {
      break;
    }
    digest.update(buffer.get(), static_cast<std::size_t>(n));
    if (progress != nullptr) {
      *progress += static_cast<std::uint64_t>(n);
    }
  }
  ::close(fd);
  return digest.final();
}

}  // namespace aibox::agent::models
