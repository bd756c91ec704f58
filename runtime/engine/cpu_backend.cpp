// The CPU backend: matrix products by runtime/kernels on a thread pool; the light element-wise
// steps run on the calling thread, attention over (token, head) pairs on the pool.
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/engine/backend.hpp"

namespace aibox::engine {
namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(unsigned threads) : pool_(threads) {}

  const char* name() const override { return "cpu"; }

  void matmul(const Weight& w, const float* x, std::size_t tokens, float* y) override {
    kernels::matmul(pool_, w.type, w.data, w.rows, w.cols, x, tokens, y);
  }

  void embed(const Weight& table, std::span<const std::int32_t> ids, float* out) override {
    std::size_t rowBytes = kernels::rowBytes(table.type, table.cols);
    for (std::size_t t = 0; t < ids.size(); ++t) {
      const auto* row = static_cast<const unsigned char*>(table.data) +
                        static_cast<std::size_t>(ids[t]) * rowBytes;
      kernels::dequantizeRow(table.type, row, out + t * table.cols, table.cols);
    }
  }

  void rmsNorm(const float* x, const float* weight, std::size_t tokens, std::size_t width,
               float epsilon, float* out) override {
    for (std::size_t t = 0; t < tokens; ++t) {
      const float* row = x + t * width;
      double squares = 0;
      for (std::size_t i = 0; i < width; ++i) {
        squares += static_cast<double>(row[i]) * row[i];
      }
      auto scale =
          static_cast<float>(1.0 / std::sqrt(squares / static_cast<double>(width) + epsilon));
      for (std::size_t i = 0; i < width; ++i) {
        out[t * width + i] = row[i] * scale * weight[i];
      }
    }
  }

  void rope(const RopeCall& call) override {
    std::uint32_t half = call.dims / 2;
    inverse_.resize(half);
    for (std::uint32_t i = 0; i < half; ++i) {
      double frequency = std::pow(static_cast<double>(call.base), -2.0 * i / call.dims);
      inverse_[i] = call.factors != nullptr ? frequency / call.factors[i] : frequency;
    }
    for (std::uint32_t t = 0; t < call.tokens; ++t) {
      double position = call.positions[t];
      for (std::uint32_t i = 0; i < half; ++i) {
        double angle = position * inverse_[i];
        auto c = static_cast<float>(std::cos(angle));
        auto s = static_cast<float>(std::sin(angle));
        for (std::uint32_t h = 0; h < call.heads; ++h) {
          float* head = call.x + (std::size_t{t} * call.heads + h) * call.headDim;
          std::uint32_t a = call.neox ? i : 2 * i;
          std::uint32_t b = call.neox ? i + half : 2 * i + 1;
          float x0 = head[a];
          float x1 = head[b];
          head[a] = x0 * c - x1 * s;
          head[b] = x0 * s + x1 * c;
        }
      }
    }
  }

  void attention(const AttentionCall& call) override {
    std::uint32_t group = call.heads / call.kvHeads;
    std::size_t kvWidth = std::size_t{call.kvHeads} * call.headDim;
    std::size_t qWidth = std::size_t{call.heads} * call.headDim;
    bool half = call.kvType == kernels::Type::F16;
    std::size_t element = half ? 2 : 4;
    float scale = 1.0f / std::sqrt(static_cast<float>(call.headDim));
    std::size_t jobs = std::size_t{call.tokens} * call.heads;
    // Per thread: the scores, and one converted row for an F16 cache.
    std::size_t share = std::size_t{call.positions} + call.headDim;
    scores_.resize(pool_.size() * share);
    pool_.run([&](unsigned thread, unsigned threads) {
      float* scores = scores_.data() + std::size_t{thread} * share;
      float* converted = scores + call.positions;
      // Position p's row for kv head `kv`, as floats.
      auto row = [&](const void* const* blocks, std::uint32_t p, std::uint32_t kv) {
        const auto* at =
            static_cast<const unsigned char*>(blocks[p / call.blockPositions]) +
            (p % call.blockPositions * kvWidth + std::size_t{kv} * call.headDim) * element;
        if (!half) {
          return reinterpret_cast<const float*>(at);
        }
        kernels::dequantizeRow(kernels::Type::F16, at, converted, call.headDim);
        return static_cast<const float*>(converted);
      };
      for (std::size_t job = thread; job < jobs; job += threads) {
        auto t = static_cast<std::uint32_t>(job / call.heads);
        auto h = static_cast<std::uint32_t>(job % call.heads);
        std::uint32_t kv = h / group;
        // Causal: token t sees every position up to its own.
        std::uint32_t visible = call.positions - call.tokens + t + 1;
        const float* q = call.q + t * qWidth + std::size_t{h} * call.headDim;
        float best = -INFINITY;
        for (std::uint32_t p = 0; p < visible; ++p) {
          scores[p] = kernels::dot(q, row(call.keyBlocks, p, kv), call.headDim) * scale;
          best = std::max(best, scores[p]);
        }
        float total = 0;
        for (std::uint32_t p = 0; p < visible; ++p) {
          scores[p] = std::exp(scores[p] - best);
          total += scores[p];
        }
        float* out = call.out + t * qWidth + std::size_t{h} * call.headDim;
        std::fill(out, out + call.headDim, 0.0f);
        for (std::uint32_t p = 0; p < visible; ++p) {
          kernels::addScaled(out, row(call.valueBlocks, p, kv), scores[p] / total, call.headDim);
        }
      }
    });
  }

  void add(float* x, const float* y, std::size_t count) override {
    for (std::size_t i = 0; i < count; ++i) {
      x[i] += y[i];
    }
  }

  void addRow(float* x, const float* row, std::size_t tokens, std::size_t width) override {
    for (std::size_t t = 0; t < tokens; ++t) {
      add(x + t * width, row, width);
    }
  }

  void swiglu(float* gate, const float* up, std::size_t count) override {
    for (std::size_t i = 0; i < count; ++i) {
      gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    }
  }

 private:
  kernels::ThreadPool pool_;
  std::vector<double> inverse_;
  std::vector<float> scores_;
};

}  // namespace

std::unique_ptr<Backend> makeCpuBackend(unsigned threads) {
  if (threads == 0) {
    // The CPUs this process may run on (a cpuset or taskset), not every CPU of the host.
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    threads = sched_getaffinity(0, sizeof allowed, &allowed) == 0
                  ? static_cast<unsigned>(CPU_COUNT(&allowed))
                  : std::thread::hardware_concurrency();
    threads = std::max(1u, threads);
  }
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace aibox::engine
