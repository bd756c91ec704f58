#include "tests/support/gguf_writer.hpp"

#include <algorithm>
#include <cstring>

namespace aibox::test {
namespace {

template <typename T>
std::string little(T value) {
  std::string out(sizeof(T), '\0');
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[i] = static_cast<char>(static_cast<std::uint64_t>(value) >> (8 * i));
  }
  return out;
}

std::string ggufString(const std::string& text) {
  return little<std::uint64_t>(text.size()) + text;
}

constexpr std::uint32_t kUint32 = 4, kInt32 = 5, kFloat32 = 6, kBool = 7, kString = 8, kArray = 9,
                        kUint64 = 10;

}  // namespace

GgufWriter& GgufWriter::entry(const std::string& key, std::uint32_t type,
                              const std::string& value) {
  metadata_ += ggufString(key) + little(type) + value;
  ++metadataCount_;
  return *this;
}

GgufWriter& GgufWriter::u32(const std::string& key, std::uint32_t value) {
  return entry(key, kUint32, little(value));
}

GgufWriter& GgufWriter::u64(const std::string& key, std::uint64_t value) {
  return entry(key, kUint64, little(value));
}

GgufWriter& GgufWriter::i32(const std::string& key, std::int32_t value) {
  return entry(key, kInt32, little(static_cast<std::uint32_t>(value)));
}

GgufWriter& GgufWriter::f32(const std::string& key, float value) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return entry(key, kFloat32, little(bits));
}

GgufWriter& GgufWriter::boolean(const std::string& key, bool value) {
  return entry(key, kBool, std::string(1, value ? '\1' : '\0'));
}

GgufWriter& GgufWriter::string(const std::string& key, const std::string& value) {
  return entry(key, kString, ggufString(value));
}

GgufWriter& GgufWriter::strings(const std::string& key, const std::vector<std::string>& values) {
  std::string body = little(kString) + little<std::uint64_t>(values.size());
  for (const auto& value : values) {
    body += ggufString(value);
  }
  return entry(key, kArray, body);
}

GgufWriter& GgufWriter::i32s(const std::string& key, const std::vector<std::int32_t>& values) {
  std::string body = little(kInt32) + little<std::uint64_t>(values.size());
  for (auto value : values) {
    body += little(static_cast<std::uint32_t>(value));
  }
  return entry(key, kArray, body);
}

GgufWriter& GgufWriter::tensor(const std::string& name, const std::vector<std::uint64_t>& shape,
                               std::uint32_t type, std::optional<std::uint64_t> offset) {
  std::uint64_t at = offset.value_or(nextOffset_);
  tensors_.push_back(Tensor{name, shape, type, at});
  std::uint64_t end = at + tensorBytes(type, shape);
  nextOffset_ = std::max(nextOffset_, (end + alignment - 1) / alignment * alignment);
  return *this;
}

std::uint64_t GgufWriter::tensorBytes(std::uint32_t type, const std::vector<std::uint64_t>& shape) {
  std::uint64_t elements = 1;
  for (auto dim : shape) {
    elements *= dim;
  }
  switch (type) {
    case kGgmlF32:
      return elements * 4;
    case kGgmlF16:
      return elements * 2;
    case kGgmlQ4_0:  // a 2-byte scale and 32 4-bit values per block
      return elements / 32 * (2 + 16);
    case kGgmlQ8_0:  // a 2-byte scale and 32 8-bit values per block
      return elements / 32 * (2 + 32);
    case kGgmlQ4_K:  // 256 values: d, dmin, 12 bytes of scales, 128 bytes of nibbles
      return elements / 256 * (2 + 2 + 12 + 128);
    case kGgmlQ6_K:  // 256 values: 128 + 64 bytes of bits, 16 scales, d
      return elements / 256 * (128 + 64 + 16 + 2);
    default:
      return 0;
  }
}

std::string GgufWriter::header() const {
  std::string out = "GGUF" + little(version_) + little<std::uint64_t>(tensors_.size()) +
                    little(metadataCount_) + metadata_;
  for (const auto& tensor : tensors_) {
    out += ggufString(tensor.name) + little<std::uint32_t>(tensor.shape.size());
    for (auto dim : tensor.shape) {
      out += little(dim);
    }
    out += little(tensor.type) + little(tensor.offset);
  }
  return out;
}

std::uint64_t GgufWriter::dataOffset() const {
  return (header().size() + alignment - 1) / alignment * alignment;
}

std::string GgufWriter::bytes() const {
  std::string out = header();
  out.resize(dataOffset(), '\0');
  std::uint64_t dataBytes = 0;
  for (const auto& tensor : tensors_) {
    dataBytes = std::max(dataBytes, tensor.offset + tensorBytes(tensor.type, tensor.shape));
  }
  out.resize(out.size() + dataBytes, '\0');
  return out;
}

}  // namespace aibox::test
