#pragma once
// Writes GGUF v3 files: typed metadata, tensor infos at aligned offsets, then the tensor
// data, each tensor's bytes produced only when written so a large model never sits in
// memory whole. The file appears complete or not at all (temp name, fsync, rename).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "runtime/kernels/kernels.hpp"

namespace aibox::engine {

class GgufBuilder {
 public:
  void u32(const std::string& key, std::uint32_t value);
  void f32(const std::string& key, float value);
  void boolean(const std::string& key, bool value);
  void string(const std::string& key, const std::string& value);
  void strings(const std::string& key, const std::vector<std::string>& values);
  void floats(const std::string& key, const std::vector<float>& values);
  void i32s(const std::string& key, const std::vector<std::int32_t>& values);

  // `shape` in GGUF order (shape[0] contiguous); `data` returns exactly the tensor's bytes.
  void tensor(const std::string& name, std::vector<std::uint64_t> shape, kernels::Type type,
              std::function<std::string()> data);

  // Throws std::runtime_error naming the path (and removes the temp file) on failure.
  // `progress` is called after each tensor with (done, total).
  void write(const std::filesystem::path& path,
             const std::function<void(std::size_t, std::size_t)>& progress = {}) const;

  static constexpr std::uint64_t kAlignment = 32;

 private:
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> shape;
    kernels::Type type;
    std::uint64_t offset;
    std::uint64_t bytes;
    std::function<std::string()> data;
  };
  void entry(const std::string& key, std::uint32_t type, const std::string& value);

  std::uint64_t metadataCount_ = 0;
  std::string metadata_;
  std::vector<Tensor> tensors_;
  std::uint64_t nextOffset_ = 0;
};

}  // namespace aibox::engine
