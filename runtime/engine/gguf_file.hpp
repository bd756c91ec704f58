#pragma once
// A GGUF model file opened for inference: the header read and checked by common/modelfile
// (every offset and size against the file), the file memory-mapped read-only, and typed
// access to metadata, including the long arrays (vocabulary, merges) the header reader skips.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/modelfile/modelfile.hpp"

namespace aibox::engine {

using modelfile::Error;
using modelfile::Result;

class GgufFile {
 public:
  static Result<std::shared_ptr<const GgufFile>> open(const std::filesystem::path& path);
  // Over bytes already in memory (tests, the fuzz target); `bytes` must outlive the object.
  static Result<std::shared_ptr<const GgufFile>> fromMemory(std::string_view bytes);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const modelfile::GgufInfo& info() const { return info_; }
  const std::filesystem::path& path() const { return path_; }

  const modelfile::GgufTensor* tensor(std::string_view name) const;
  const void* data(const modelfile::GgufTensor& tensor) const;

  std::optional<std::string> string(std::string_view key) const;
  std::optional<std::uint64_t> uint(std::string_view key) const;
  std::optional<double> number(std::string_view key) const;  // any numeric type
  std::optional<bool> boolean(std::string_view key) const;

  // Whole arrays; absent key -> empty vector; a wrong element type -> Error naming the key.
  Result<std::vector<std::string>> strings(std::string_view key) const;
  Result<std::vector<float>> floats(std::string_view key) const;
  Result<std::vector<std::int32_t>> ints(std::string_view key) const;

 private:
  GgufFile() = default;
  static Result<std::shared_ptr<const GgufFile>> finish(std::unique_ptr<GgufFile> file);
  const modelfile::GgufArray* array(std::string_view key) const;

  std::filesystem::path path_;
  modelfile::GgufInfo info_;
  const char* base_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
};

}  // namespace aibox::engine
