#include "runtime/engine/gguf_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

namespace aibox::engine {
namespace {

template <typename T>
std::string little(T value) {
  std::string out(sizeof(T), '\0');
  std::memcpy(out.data(), &value, sizeof(T));  // x86-64 and aarch64 are little-endian
  return out;
}

std::string ggufString(const std::string& text) {
  return little<std::uint64_t>(text.size()) + text;
}

constexpr std::uint32_t kUint32 = 4, kInt32 = 5, kFloat32 = 6, kBool = 7, kString = 8, kArray = 9;

class File {
 public:
  explicit File(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      fail("create");
    }
  }
  ~File() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  void write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        fail("write");
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void sync() {
    if (::fsync(fd_) != 0) {
      fail("fsync");
    }
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error("cannot " + std::string(what) + " " + path_.string() + ": " +
                             std::strerror(errno));
  }
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace

void GgufBuilder::entry(const std::string& key, std::uint32_t type, const std::string& value) {
  metadata_ += ggufString(key) + little(type) + value;
  ++metadataCount_;
}

void GgufBuilder::u32(const std::string& key, std::uint32_t value) {
  entry(key, kUint32, little(value));
}

void GgufBuilder::f32(const std::string& key, float value) {
  entry(key, kFloat32, little(value));
}

void GgufBuilder::boolean(const std::string& key, bool value) {
  entry(key, kBool, std::string(1, value ? '\1' : '\0'));
}

void GgufBuilder::string(const std::string& key, const std::string& value) {
  entry(key, kString, ggufString(value));
}

void GgufBuilder::strings(const std::string& key, const std::vector<std::string>& values) {
  std::string body = little(kString) + little<std::uint64_t>(values.size());
  for (const auto& value : values) {
    body += ggufString(value);
  }
  entry(key, kArray, body);
}

void GgufBuilder::floats(const std::string& key, const std::vector<float>& values) {
  std::string body = little(kFloat32) + little<std::uint64_t>(values.size());
  for (float value : values) {
    body += little(value);
  }
  entry(key, kArray, body);
}

void GgufBuilder::i32s(const std::string& key, const std::vector<std::int32_t>& values) {
  std::string body = little(kInt32) + little<std::uint64_t>(values.size());
  for (auto value : values) {
    body += little(value);
  }
  entry(key, kArray, body);
}

void GgufBuilder::tensor(const std::string& name, std::vector<std::uint64_t> shape,
                         kernels::Type type, std::function<std::string()> data) {
  std::uint64_t rows = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) {
    rows *= shape[i];
  }
  std::uint64_t bytes = kernels::rowBytes(type, shape.at(0)) * rows;
  tensors_.push_back(Tensor{name, std::move(shape), type, nextOffset_, bytes, std::move(data)});
  nextOffset_ = (nextOffset_ + bytes + kAlignment - 1) / kAlignment * kAlignment;
}

void GgufBuilder::write(const std::filesystem::path& path,
                        const std::function<void(std::size_t, std::size_t)>& progress) const {
  std::string header = "GGUF" + little<std::uint32_t>(3) + little<std::uint64_t>(tensors_.size()) +
                       little<std::uint64_t>(metadataCount_) + metadata_;
  for (const auto& tensor : tensors_) {
    header += ggufString(tensor.name) +
              little<std::uint32_t>(static_cast<std::uint32_t>(tensor.shape.size()));
    for (auto dim : tensor.shape) {
      header += little(dim);
    }
    header += little(static_cast<std::uint32_t>(tensor.type)) + little(tensor.offset);
  }
  header.resize((header.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');

  auto temp = path;
  temp += ".tmp-" + std::to_string(std::random_device{}());
  try {
    File file(temp);
    file.write(header);
    std::uint64_t at = 0;
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      const auto& tensor = tensors_[i];
      file.write(std::string(tensor.offset - at, '\0'));
      std::string bytes = tensor.data();
      if (bytes.size() != tensor.bytes) {
        throw std::runtime_error("tensor " + tensor.name + " produced " +
                                 std::to_string(bytes.size()) + " bytes instead of " +
                                 std::to_string(tensor.bytes));
      }
      file.write(bytes);
      at = tensor.offset + tensor.bytes;
      if (progress) {
        progress(i + 1, tensors_.size());
      }
    }
    file.sync();
  } catch (...) {
    std::filesystem::remove(temp);
    throw;
  }
  std::filesystem::rename(temp, path);
}

}  // namespace aibox::engine
