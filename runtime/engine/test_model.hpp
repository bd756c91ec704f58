#pragma once
// Small but complete GGUF models with seeded random weights, for tests, benchmarks and the
// demo: the real metadata of their architecture, a byte-level BPE vocabulary trained on a
// built-in corpus (so text round-trips), a chat template of the family, and every tensor in
// the chosen type. Any conforming GGUF reader can load them; what they say is noise.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "runtime/engine/gguf_file.hpp"

namespace aibox::engine {

struct TestModelSpec {
  std::string architecture = "llama";  // "llama" or "qwen2"
  std::string type = "q8_0";  // f32 f16 bf16 q8_0 q4_0 q4_k q6_k, or q4_k_m (Q4_K + Q6_K mix)
  std::uint32_t layers = 2;
  std::uint32_t embedding = 256;
  std::uint32_t feedForward = 768;
  std::uint32_t heads = 4;
  std::uint32_t kvHeads = 2;
  std::uint32_t context = 2048;
  std::uint32_t vocabulary = 1024;  // BPE vocabulary size to train (special tokens on top)
  bool tiedOutput = false;
  std::string pooling;  // "mean", "cls" or "last": an embedding model (<arch>.pooling_type)
  std::uint64_t seed = 1;
};

// The type names make-test-model accepts, comma separated.
std::string testModelTypes();

// Checks the spec (architecture, type, sizes that the type's blocks divide). Empty when valid.
std::string validate(const TestModelSpec& spec);

// Writes the model to `path` (atomically); `progress(done, total)` after each tensor.
// Throws std::runtime_error on an invalid spec or a write failure.
void writeTestModel(const TestModelSpec& spec, const std::filesystem::path& path,
                    const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace aibox::engine
