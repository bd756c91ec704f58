// The ISA switch and matmul. Activations are quantised once per call into a scratch buffer of
// the calling thread; rows are then split into chunks that the pool's threads take in turn.
// Within a chunk, each group of up to four tokens makes a pass over the chunk's rows, so with
// many tokens a chunk's weights come from memory once and from cache for the other groups.

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "runtime/kernels/dot.hpp"
#include "runtime/kernels/kernels.hpp"

#if defined(AIBOX_KERNELS_AVX2)
#include <cpuid.h>
#endif

namespace aibox::kernels {
namespace {

using detail::ActivationKind;
using detail::Activations;
using detail::DotFn;
using detail::IsaKernels;
using detail::kMaxDotTokens;

bool cpuHasAvx2() {
#if defined(AIBOX_KERNELS_AVX2)
  // The builtin also checks that the OS saves the AVX registers; F16C (which every AVX2 CPU
  // has) is read from CPUID leaf 1 directly, as not every compiler's builtin knows it.
  __builtin_cpu_init();
  unsigned eax = 0;
  unsigned ebx = 0;
  unsigned ecx = 0;
  unsigned edx = 0;
  bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#else
  return false;
#endif
}

Isa startIsa() {
  const char* forced = std::getenv("AIBOX_ISA");  // NOLINT(concurrency-mt-unsafe): read once
  if (forced != nullptr && std::string_view(forced) == "portable") {
    return Isa::Portable;
  }
  return detectedIsa();
}

std::atomic<Isa>& isaSlot() {
  static std::atomic<Isa> slot{startIsa()};
  return slot;
}

const IsaKernels& activeKernels() {
#if defined(AIBOX_KERNELS_AVX2)
  if (activeIsa() == Isa::Avx2) {
    return detail::avx2Kernels();
  }
#endif
  return detail::portableKernels();
}

struct TypeKernel {
  ActivationKind activation;
  DotFn dot;
};

TypeKernel kernelFor(const IsaKernels& kernels, Type type) {
  switch (type) {
    case Type::F32:
      return {ActivationKind::Float, kernels.f32};
    case Type::F16:
      return {ActivationKind::Float, kernels.f16};
    case Type::BF16:
      return {ActivationKind::Float, kernels.bf16};
    case Type::Q8_0:
      return {ActivationKind::Q8_0, kernels.q8_0};
    case Type::Q4_0:
      return {ActivationKind::Q8_0, kernels.q4_0};
    case Type::Q4_K:
      return {ActivationKind::Q8K, kernels.q4k};
    case Type::Q6_K:
      return {ActivationKind::Q8K, kernels.q6k};
  }
  throw std::invalid_argument("matmul of tensor type " +
                              std::to_string(static_cast<std::uint32_t>(type)));
}

constexpr std::size_t roundUp(std::size_t n, std::size_t to) {
  return (n + to - 1) / to * to;
}

// One token's quantised activations: values, then block scales, then (Q8K) sums, each
// starting on a cache line.
struct ActivationLayout {
  std::size_t stride;
  std::size_t scalesOffset;
  std::size_t sumsOffset;
};

ActivationLayout layoutFor(ActivationKind kind, std::size_t cols) {
  std::size_t blockValues =
      kind == ActivationKind::Q8_0 ? detail::kQ8_0Values : detail::kSuperValues;
  std::size_t scalesOffset = roundUp(cols, 64);
  std::size_t sumsOffset = scalesOffset + roundUp(cols / blockValues * sizeof(float), 64);
  std::size_t sumsBytes = kind == ActivationKind::Q8K
                              ? roundUp(cols / detail::kSumValues * sizeof(std::int16_t), 64)
                              : 0;
  return {sumsOffset + sumsBytes, scalesOffset, sumsOffset};
}

// Grows to the largest call on this thread and stays: no allocation in steady state.
std::byte* scratch(std::size_t bytes) {
  struct alignas(64) CacheLine {
    std::byte bytes[64];
  };
  thread_local std::vector<CacheLine> buffer;
  std::size_t lines = roundUp(bytes, 64) / 64;
  if (buffer.size() < lines) {
    buffer.resize(lines);
  }
  return buffer.empty() ? nullptr : buffer.front().bytes;
}

class QuantizeJob {
 public:
  QuantizeJob(detail::QuantizeFn quantize, const float* x, std::size_t cols, std::byte* out,
              ActivationLayout layout)
      : quantize_(quantize), x_(x), cols_(cols), out_(out), layout_(layout) {}

  void token(std::size_t t) const {
    std::byte* base = out_ + t * layout_.stride;
    quantize_(x_ + t * cols_, cols_, reinterpret_cast<std::int8_t*>(base),
              reinterpret_cast<float*>(base + layout_.scalesOffset),
              reinterpret_cast<std::int16_t*>(base + layout_.sumsOffset));
  }

  void run(std::size_t tokens, unsigned thread, unsigned threads) const {
    for (std::size_t t = thread; t < tokens; t += threads) {
      token(t);
    }
  }

 private:
  detail::QuantizeFn quantize_;
  const float* x_;
  std::size_t cols_;
  std::byte* out_;
  ActivationLayout layout_;
};

// Weights of a chunk that stay in L2 while every token group passes over them.
constexpr std::size_t kChunkBytes = std::size_t{128} << 10;
// Chunks per thread, so that a thread held up elsewhere leaves little for the others to wait on.
constexpr std::size_t kChunksPerThread = 8;

class RowJob {
 public:
  RowJob(DotFn dot, const std::byte* w, std::size_t rowBytes, std::size_t rows, std::size_t cols,
         const Activations& activations, std::size_t tokens, float* y, unsigned threads)
      : dot_(dot),
        w_(w),
        rowBytes_(rowBytes),
        rows_(rows),
        cols_(cols),
        activations_(activations),
        tokens_(tokens),
        y_(y) {
    std::size_t balanced = (rows + threads * kChunksPerThread - 1) / (threads * kChunksPerThread);
    std::size_t cached =
        tokens > kMaxDotTokens ? kChunkBytes / std::max<std::size_t>(rowBytes, 1) : balanced;
    chunkRows_ = std::max<std::size_t>(1, std::min(balanced, cached));
  }

  void run() {
    for (;;) {
      std::size_t first = next_.fetch_add(1, std::memory_order_relaxed) * chunkRows_;
      if (first >= rows_) {
        return;
      }
      std::size_t last = std::min(rows_, first + chunkRows_);
      for (std::size_t t = 0; t < tokens_; t += kMaxDotTokens) {
        auto group = static_cast<unsigned>(std::min<std::size_t>(kMaxDotTokens, tokens_ - t));
        Activations shifted = activations_;
        shifted.data += t * activations_.stride;
        for (std::size_t r = first; r < last; ++r) {
          dot_(w_ + r * rowBytes_, cols_, shifted, group, y_ + t * rows_ + r, rows_);
        }
      }
    }
  }

 private:
  DotFn dot_;
  const std::byte* w_;
  std::size_t rowBytes_;
  std::size_t rows_;
  std::size_t cols_;
  Activations activations_;
  std::size_t tokens_;
  float* y_;
  std::size_t chunkRows_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace

Isa detectedIsa() {
  static const Isa detected = cpuHasAvx2() ? Isa::Avx2 : Isa::Portable;
  return detected;
}

Isa activeIsa() {
  return isaSlot().load(std::memory_order_relaxed);
}

Isa setIsa(Isa isa) {
  Isa chosen = isa == Isa::Avx2 && detectedIsa() != Isa::Avx2 ? Isa::Portable : isa;
  isaSlot().store(chosen, std::memory_order_relaxed);
  return chosen;
}

std::string_view isaName(Isa isa) {
  return isa == Isa::Avx2 ? "avx2" : "portable";
}

void matmul(ThreadPool& pool, Type type, const void* w, std::size_t rows, std::size_t cols,
            const float* x, std::size_t tokens, float* y) {
  std::size_t bytesPerRow = rowBytes(type, cols);
  if (rows == 0 || tokens == 0) {
    return;
  }
  const IsaKernels& kernels = activeKernels();
  TypeKernel kernel = kernelFor(kernels, type);

  Activations activations{reinterpret_cast<const std::byte*>(x), cols * sizeof(float), 0, 0};
  if (kernel.activation != ActivationKind::Float) {
    ActivationLayout layout = layoutFor(kernel.activation, cols);
    std::byte* buffer = scratch(layout.stride * tokens);
    QuantizeJob quantize(
        kernel.activation == ActivationKind::Q8_0 ? kernels.quantizeQ8_0 : kernels.quantizeQ8K, x,
        cols, buffer, layout);
    if (tokens == 1 || pool.size() == 1) {
      quantize.run(tokens, 0, 1);
    } else {
      pool.run([&quantize, tokens](unsigned thread, unsigned threads) {
        quantize.run(tokens, thread, threads);
      });
    }
    activations = {buffer, layout.stride, layout.scalesOffset, layout.sumsOffset};
  }

  RowJob job(kernel.dot, static_cast<const std::byte*>(w), bytesPerRow, rows, cols, activations,
             tokens, y, pool.size());
  if (pool.size() == 1) {
    job.run();
  } else {
    pool.run([&job](unsigned /*thread*/, unsigned /*threads*/) { job.run(); });
  }
}

float dot(const float* a, const float* b, std::size_t n) {
  return activeKernels().vectorDot(a, b, n);
}

void addScaled(float* y, const float* x, float alpha, std::size_t n) {
  activeKernels().addScaled(y, x, alpha, n);
}

}  // namespace aibox::kernels
