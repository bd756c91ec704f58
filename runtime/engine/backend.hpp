#pragma once
// The seam between the model code and the device that does the arithmetic. The model code
// (model.cpp) says what to compute; a Backend does it. CpuBackend runs the kernels of
// runtime/kernels on a thread pool. A GPU backend would implement the same operations and
// keep weights in device memory (prepare() is where it uploads them), with no change to the
// model code.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "runtime/kernels/kernels.hpp"

namespace aibox::engine {

// A tensor of the model file: rows x cols values of `type` (GGUF shape [cols, rows]).
struct Weight {
  kernels::Type type = kernels::Type::F32;
  const void* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;
  explicit operator bool() const { return data != nullptr; }
};

// Attention of `tokens` new queries of one sequence over its paged cache: position p's keys
// are row p % blockPositions of keyBlocks[p / blockPositions] (rows of kvHeads x headDim
// values of kvType, F32 or F16), and likewise its values.
struct AttentionCall {
  const float* q;                // tokens x heads x headDim (already rotated)
  const void* const* keyBlocks;  // one per block of blockPositions positions
  const void* const* valueBlocks;
  kernels::Type kvType;
  std::uint32_t blockPositions;
  float* out;               // tokens x heads x headDim
  std::uint32_t tokens;     // new tokens, the last `tokens` positions of the cache
  std::uint32_t positions;  // cache positions in use, including the new tokens
  std::uint32_t heads;
  std::uint32_t kvHeads;
  std::uint32_t headDim;
};

struct RopeCall {
  float* x;                        // tokens x heads x headDim, rotated in place
  const std::uint32_t* positions;  // one per token
  std::uint32_t tokens;
  std::uint32_t heads;
  std::uint32_t headDim;
  std::uint32_t dims;    // leading dims of a head that rotate
  float base;            // frequency base
  bool neox;             // pairs (i, i + dims/2) instead of (2i, 2i + 1)
  const float* factors;  // dims/2 frequency divisors (rope_freqs), or null
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual void prepare(const Weight&) {}

  // y[t][r] = sum_k w[r][k] x[t][k]
  virtual void matmul(const Weight& w, const float* x, std::size_t tokens, float* y) = 0;
  // out[t] = row `ids[t]` of the embedding table, as floats.
  virtual void embed(const Weight& table, std::span<const std::int32_t> ids, float* out) = 0;
  // out[t] = x[t] / rms(x[t]) * weight, per row of `width`.
  virtual void rmsNorm(const float* x, const float* weight, std::size_t tokens, std::size_t width,
                       float epsilon, float* out) = 0;
  // Causal softmax(q k^T / sqrt(d)) v with grouped-query heads.
  virtual void attention(const AttentionCall& call) = 0;
  virtual void rope(const RopeCall& call) = 0;
  // x[t][i] += y[t][i] for a whole matrix (y of `count` values), or a bias row per token.
  virtual void add(float* x, const float* y, std::size_t count) = 0;
  virtual void addRow(float* x, const float* row, std::size_t tokens, std::size_t width) = 0;
  // gate[i] = silu(gate[i]) * up[i]
  virtual void swiglu(float* gate, const float* up, std::size_t count) = 0;
};

// The CPU backend over `threads` threads (0: one per core).
std::unique_ptr<Backend> makeCpuBackend(unsigned threads);

}  // namespace aibox::engine
