#include "runtime/engine/gguf_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aibox::engine {
namespace {

using modelfile::GgufValueType;

// Reads little-endian values out of the checked array bytes; the header reader has walked
// them already, but every step is bounded again so a bug there cannot turn into a bad read.
class ArrayCursor {
 public:
  ArrayCursor(const char* data, std::uint64_t size) : data_(data), size_(size) {}

  template <typename T>
  bool read(T& out) {
    if (size_ - pos_ < sizeof(T)) {
      return false;
    }
    std::memcpy(&out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool readString(std::string& out) {
    std::uint64_t length = 0;
    if (!read(length) || size_ - pos_ < length) {
      return false;
    }
    out.assign(data_ + pos_, length);
    pos_ += length;
    return true;
  }

 private:
  const char* data_;
  std::uint64_t size_;
  std::uint64_t pos_ = 0;
};

Error arrayError(std::string_view key, std::string_view wanted) {
  return Error{"GGUF metadata " + std::string(key) + " is not an array of " + std::string(wanted) +
               ": the file is not a model this engine can read"};
}

}  // namespace

Result<std::shared_ptr<const GgufFile>> GgufFile::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error{"cannot open " + path.string() + ": " + std::strerror(errno)};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
    ::close(fd);
    return Error{path.string() + " is not a regular, non-empty file"};
  }
  void* mapping =
      ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  int mapErrno = errno;
  ::close(fd);
  if (mapping == MAP_FAILED) {
    return Error{"cannot map " + path.string() + " into memory: " + std::strerror(mapErrno)};
  }
  std::unique_ptr<GgufFile> file(new GgufFile);
  file->path_ = path;
  file->base_ = static_cast<const char*>(mapping);
  file->size_ = static_cast<std::size_t>(st.st_size);
  file->mapped_ = true;
  // The header is checked in the mapping itself, so what is checked is what is used.
  auto info = modelfile::parseGguf(std::string_view(file->base_, file->size_), file->size_);
  if (auto* error = std::get_if<Error>(&info)) {
    return *error;
  }
  file->info_ = std::move(std::get<modelfile::GgufInfo>(info));
  return finish(std::move(file));
}

Result<std::shared_ptr<const GgufFile>> GgufFile::fromMemory(std::string_view bytes) {
  auto info = modelfile::parseGguf(bytes, bytes.size());
  if (auto* error = std::get_if<Error>(&info)) {
    return *error;
  }
  std::unique_ptr<GgufFile> file(new GgufFile);
  file->info_ = std::move(std::get<modelfile::GgufInfo>(info));
  file->base_ = bytes.data();
  file->size_ = bytes.size();
  return finish(std::move(file));
}

Result<std::shared_ptr<const GgufFile>> GgufFile::finish(std::unique_ptr<GgufFile> file) {
  for (const auto& tensor : file->info_.tensors) {
    if (file->info_.dataOffset + tensor.offset + tensor.bytes > file->size_) {
      return Error{"GGUF file " + file->path_.string() +
                   " changed while it was opened: open it again"};
    }
  }
  for (const auto& [key, value] : file->info_.metadata) {
    if (const auto* array = std::get_if<modelfile::GgufArray>(&value)) {
      if (array->dataOffset + array->dataBytes > file->size_) {
        return Error{"GGUF metadata " + key + " lies outside the file"};
      }
    }
  }
  return std::shared_ptr<const GgufFile>(std::move(file));
}

GgufFile::~GgufFile() {
  if (mapped_) {
    ::munmap(const_cast<char*>(base_), size_);
  }
}

const modelfile::GgufTensor* GgufFile::tensor(std::string_view name) const {
  for (const auto& tensor : info_.tensors) {
    if (tensor.name == name) {
      return &tensor;
    }
  }
  return nullptr;
}

const void* GgufFile::data(const modelfile::GgufTensor& tensor) const {
  return base_ + info_.dataOffset + tensor.offset;
}

std::optional<std::string> GgufFile::string(std::string_view key) const {
  auto found = info_.metadata.find(key);
  if (found == info_.metadata.end()) {
    return std::nullopt;
  }
  if (const auto* text = std::get_if<std::string>(&found->second)) {
    return *text;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> GgufFile::uint(std::string_view key) const {
  return modelfile::ggufUint(info_, key);
}

std::optional<double> GgufFile::number(std::string_view key) const {
  auto found = info_.metadata.find(key);
  if (found == info_.metadata.end()) {
    return std::nullopt;
  }
  if (const auto* d = std::get_if<double>(&found->second)) {
    return *d;
  }
  if (const auto* u = std::get_if<std::uint64_t>(&found->second)) {
    return static_cast<double>(*u);
  }
  if (const auto* i = std::get_if<std::int64_t>(&found->second)) {
    return static_cast<double>(*i);
  }
  return std::nullopt;
}

std::optional<bool> GgufFile::boolean(std::string_view key) const {
  auto found = info_.metadata.find(key);
  if (found == info_.metadata.end()) {
    return std::nullopt;
  }
  if (const auto* b = std::get_if<bool>(&found->second)) {
    return *b;
  }
  return std::nullopt;
}

const modelfile::GgufArray* GgufFile::array(std::string_view key) const {
  auto found = info_.metadata.find(key);
  if (found == info_.metadata.end()) {
    return nullptr;
  }
  return std::get_if<modelfile::GgufArray>(&found->second);
}

Result<std::vector<std::string>> GgufFile::strings(std::string_view key) const {
  std::vector<std::string> out;
  if (info_.metadata.find(key) == info_.metadata.end()) {
    return out;
  }
  const auto* values = array(key);
  if (values == nullptr || values->elementType != GgufValueType::String) {
    return arrayError(key, "strings");
  }
  ArrayCursor cursor(base_ + values->dataOffset, values->dataBytes);
  out.resize(values->count);
  for (auto& text : out) {
    if (!cursor.readString(text)) {
      return arrayError(key, "strings");
    }
  }
  return out;
}

Result<std::vector<float>> GgufFile::floats(std::string_view key) const {
  std::vector<float> out;
  if (info_.metadata.find(key) == info_.metadata.end()) {
    return out;
  }
  const auto* values = array(key);
  if (values == nullptr || values->elementType != GgufValueType::Float32) {
    return arrayError(key, "32-bit floats");
  }
  ArrayCursor cursor(base_ + values->dataOffset, values->dataBytes);
  out.resize(values->count);
  for (auto& value : out) {
    if (!cursor.read(value)) {
      return arrayError(key, "32-bit floats");
    }
  }
  return out;
}

Result<std::vector<std::int32_t>> GgufFile::ints(std::string_view key) const {
  std::vector<std::int32_t> out;
  if (info_.metadata.find(key) == info_.metadata.end()) {
    return out;
  }
  const auto* values = array(key);
  if (values == nullptr || (values->elementType != GgufValueType::Int32 &&
                            values->elementType != GgufValueType::Uint32)) {
    return arrayError(key, "32-bit integers");
  }
  ArrayCursor cursor(base_ + values->dataOffset, values->dataBytes);
  out.resize(values->count);
  for (auto& value : out) {
    if (!cursor.read(value)) {
      return arrayError(key, "32-bit integers");
    }
  }
  return out;
}

}  // namespace aibox::engine
