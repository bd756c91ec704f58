#pragma once
// Writes GGUF files for tests: chosen metadata and tensors, the header laid out as the GGUF
// specification says and the tensor data zero-filled. Raw hooks (explicit offsets, any type id,
// any dimension count) let tests build the broken files a reader must refuse.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace aibox::test {

class GgufWriter {
 public:
  explicit GgufWriter(std::uint32_t version = 3) : version_(version) {}

  GgufWriter& u32(const std::string& key, std::uint32_t value);
  GgufWriter& u64(const std::string& key, std::uint64_t value);
  GgufWriter& i32(const std::string& key, std::int32_t value);
  GgufWriter& f32(const std::string& key, float value);
  GgufWriter& boolean(const std::string& key, bool value);
  GgufWriter& string(const std::string& key, const std::string& value);
  GgufWriter& strings(const std::string& key, const std::vector<std::string>& values);
  GgufWriter& i32s(const std::string& key, const std::vector<std::int32_t>& values);

  // A tensor placed after the previous one at the next aligned offset, unless `offset` is given.
  GgufWriter& tensor(const std::string& name, const std::vector<std::uint64_t>& shape,
                     std::uint32_t type, std::optional<std::uint64_t> offset = std::nullopt);

  // Header, padding and tensor data: a complete file.
  std::string bytes() const;
  // The header alone, without padding or tensor data.
  std::string header() const;
  // Offset of the tensor data in bytes().
  std::uint64_t dataOffset() const;

  // The bytes a tensor of `type` and `shape` takes (0 for a type this writer does not know).
  static std::uint64_t tensorBytes(std::uint32_t type, const std::vector<std::uint64_t>& shape);

  std::uint64_t alignment = 32;  // set general.alignment too when changing it

 private:
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> shape;
    std::uint32_t type;
    std::uint64_t offset;
  };
  GgufWriter& entry(const std::string& key, std::uint32_t type, const std::string& value);

  std::uint32_t version_;
  std::uint64_t metadataCount_ = 0;
  std::string metadata_;
  std::vector<Tensor> tensors_;
  std::uint64_t nextOffset_ = 0;
};

// GGML type ids used by tests.
inline constexpr std::uint32_t kGgmlF32 = 0;
inline constexpr std::uint32_t kGgmlF16 = 1;
inline constexpr std::uint32_t kGgmlQ4_0 = 2;
inline constexpr std::uint32_t kGgmlQ8_0 = 8;
inline constexpr std::uint32_t kGgmlQ4_K = 12;
inline constexpr std::uint32_t kGgmlQ6_K = 14;

}  // namespace aibox::test
