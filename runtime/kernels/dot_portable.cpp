// Dot products in portable C++: integer sums over each block, one float multiply per block.
// Each weight block is decoded once and used for every token of the call.

#include <cmath>

#include "runtime/kernels/dot.hpp"
#include "runtime/kernels/kernels.hpp"

namespace aibox::kernels::detail {
namespace {

const std::int8_t* values(const Activations& a, unsigned t) {
  return reinterpret_cast<const std::int8_t*>(a.data + t * a.stride);
}

const float* floats(const Activations& a, unsigned t) {
  return reinterpret_cast<const float*>(a.data + t * a.stride);
}

const float* scales(const Activations& a, unsigned t) {
  return reinterpret_cast<const float*>(a.data + t * a.stride + a.scalesOffset);
}

const std::int16_t* sums(const Activations& a, unsigned t) {
  return reinterpret_cast<const std::int16_t*>(a.data + t * a.stride + a.sumsOffset);
}

template <int N, typename A>
std::int32_t dotInts(const A* a, const std::int8_t* b) {
  std::int32_t sum = 0;
  for (int i = 0; i < N; ++i) {
    sum += static_cast<std::int32_t>(a[i]) * b[i];
  }
  return sum;
}

void store(const float* acc, unsigned tokens, float* y, std::size_t yStride) {
  for (unsigned t = 0; t < tokens; ++t) {
    y[t * yStride] = acc[t];
  }
}

// Weight values converted to float `kFloatChunk` at a time, then dotted with every token.
constexpr std::size_t kFloatChunk = 256;

template <typename Convert>
void dotFloatRow(std::size_t cols, const Activations& a, unsigned tokens, float* y,
                 std::size_t yStride, Convert convert) {
  float acc[kMaxDotTokens] = {};
  float chunk[kFloatChunk];
  for (std::size_t start = 0; start < cols; start += kFloatChunk) {
    std::size_t n = cols - start < kFloatChunk ? cols - start : kFloatChunk;
    convert(start, n, chunk);
    for (unsigned t = 0; t < tokens; ++t) {
      const float* x = floats(a, t) + start;
      float sum = 0.0f;
      for (std::size_t i = 0; i < n; ++i) {
        sum += chunk[i] * x[i];
      }
      acc[t] += sum;
    }
  }
  store(acc, tokens, y, yStride);
}

void dotF32(const std::byte* w, std::size_t cols, const Activations& a, unsigned tokens, float* y,
            std::size_t yStride) {
  const auto* row = reinterpret_cast<const float*>(w);
  dotFloatRow(cols, a, tokens, y, yStride, [row](std::size_t start, std::size_t n, float* out) {
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = row[start + i];
    }
  });
}

void dotF16(const std::byte* w, std::size_t cols, const Activations& a, unsigned tokens, float* y,
            std::size_t yStride) {
  const auto* row = reinterpret_cast<const std::uint16_t*>(w);
  dotFloatRow(cols, a, tokens, y, yStride, [row](std::size_t start, std::size_t n, float* out) {
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = halfToFloat(row[start + i]);
    }
  });
}

void dotBf16(const std::byte* w, std::size_t cols, const Activations& a, unsigned tokens, float* y,
             std::size_t yStride) {
  const auto* row = reinterpret_cast<const std::uint16_t*>(w);
  dotFloatRow(cols, a, tokens, y, yStride, [row](std::size_t start, std::size_t n, float* out) {
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = bf16ToFloat(row[start + i]);
    }
  });
}

// NOLINTNEXTLINE(readability-identifier-naming): ggml's type name
void dotQ8_0(const std::byte* w, std::size_t cols, const Activations& a, unsigned tokens, float* y,
             std::size_t yStride) {
  const auto* blocks = reinterpret_cast<const BlockQ8_0*>(w);
  float acc[kMaxDotTokens] = {};
  for (std::size_t b = 0; b < cols / kQ8_0Values; ++b) {
    float d = halfToFloat(blocks[b].d);
    for (unsigned t = 0; t < tokens; ++t) {
      std::int32_t sum = dotInts<32>(blocks[b].qs, values(a, t) + 32 * b);
      acc[t] += d * scales(a, t)[b] * static_cast<float>(sum);
    }
  }
  store(acc, tokens, y, yStride);
}

// NOLINTNEXTLINE(readability-identifier-naming): ggml's type name
void dotQ4_0(const std::byte* w, std::size_t cols, const Activations& a, unsigned tokens, float* y,
             std::size_t yStride) {
  const auto* blocks = reinterpret_cast<const BlockQ4_0*>(w);
  float acc[kMaxDotTokens] = {};
  std::int8_t q[32];
  for (std::size_t b = 0; b < cols / kQ8_0Values; ++b) {
    for (int i = 0; i < 16; ++i) {
      q[i] = static_cast<std::int8_t>((blocks[b].qs[i] & 15) - 8);
      q[i + 16] = static_cast<std::int8_t>((blocks[b].qs[i] >> 4) - 8);
    }
    float d = halfToFloat(blocks[b].d);
    for (unsigned t = 0; t < tokens; ++t) {
      std::int32_t sum = dotInts<32>(q, values(a, t) + 32 * b);
      acc[t] += d * scales(a, t)[b] * static_cast<float>(sum);
    }
  }
  store(acc, tokens, y, yStride);
}

// sum of d * scale_j * q * x - dmin * min_j * x: the min term uses the activation sums.
void dotQ4K(const std::byte* w, std::size_t cols, const Activations& a, unsigned tokens, float* y,
            std::size_t yStride) {
  const auto* blocks = reinterpret_cast<const BlockQ4K*>(w);
  float acc[kMaxDotTokens] = {};
  std::uint8_t q[256];
  std::uint8_t subScales[8];
  std::uint8_t subMins[8];
  for (std::size_t b = 0; b < cols / kSuperValues; ++b) {
    const BlockQ4K& block = blocks[b];
    for (std::size_t c = 0; c < 4; ++c) {
      for (std::size_t l = 0; l < 32; ++l) {
        q[64 * c + l] = block.qs[32 * c + l] & 15;
        q[64 * c + 32 + l] = block.qs[32 * c + l] >> 4;
      }
    }
    unpackQ4KScales(block.scales, subScales, subMins);
    float d = halfToFloat(block.d);
    float dmin = halfToFloat(block.dmin);
    for (unsigned t = 0; t < tokens; ++t) {
      const std::int8_t* x = values(a, t) + 256 * b;
      const std::int16_t* s = sums(a, t) + 16 * b;
      std::int32_t scaled = 0;
      std::int32_t offsets = 0;
      for (std::size_t j = 0; j < 8; ++j) {
        scaled += subScales[j] * dotInts<32>(q + 32 * j, x + 32 * j);
        offsets += subMins[j] * (s[2 * j] + s[2 * j + 1]);
      }
      acc[t] +=
          scales(a, t)[b] * (d * static_cast<float>(scaled) - dmin * static_cast<float>(offsets));
    }
  }
  store(acc, tokens, y, yStride);
}

void dotQ6K(const std::byte* w, std::size_t cols, const Activations& a, unsigned tokens, float* y,
            std::size_t yStride) {
  const auto* blocks = reinterpret_cast<const BlockQ6K*>(w);
  float acc[kMaxDotTokens] = {};
  std::int8_t q[256];
  for (std::size_t b = 0; b < cols / kSuperValues; ++b) {
    const BlockQ6K& block = blocks[b];
    for (std::size_t half = 0; half < 2; ++half) {
      const std::uint8_t* ql = block.ql + 64 * half;
      const std::uint8_t* qh = block.qh + 32 * half;
      std::int8_t* out = q + 128 * half;
      for (std::size_t l = 0; l < 32; ++l) {
        out[l] = static_cast<std::int8_t>(((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
        out[l + 32] = static_cast<std::int8_t>(((ql[l + 32] & 15) | ((qh[l] >> 2 & 3) << 4)) - 32);
        out[l + 64] = static_cast<std::int8_t>(((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32);
        out[l + 96] = static_cast<std::int8_t>(((ql[l + 32] >> 4) | ((qh[l] >> 6) << 4)) - 32);
      }
    }
    float d = halfToFloat(block.d);
    for (unsigned t = 0; t < tokens; ++t) {
      const std::int8_t* x = values(a, t) + 256 * b;
      std::int32_t sum = 0;
      for (std::size_t j = 0; j < 16; ++j) {
        sum += block.scales[j] * dotInts<16>(q + 16 * j, x + 16 * j);
      }
      acc[t] += d * scales(a, t)[b] * static_cast<float>(sum);
    }
  }
  store(acc, tokens, y, yStride);
}

// round(v) for |v| <= 127 (NaN and infinities from broken activations give 0 or +-127).
std::int8_t toInt8(float v) {
  float rounded = std::nearbyint(v);
  if (!(rounded >= -127.0f)) {
    return rounded < 0.0f ? std::int8_t{-127} : std::int8_t{0};
  }
  return static_cast<std::int8_t>(rounded > 127.0f ? 127.0f : rounded);
}

// Scale amax / 127 per block of `blockValues`.
void quantizeBlocks(const float* x, std::size_t cols, std::size_t blockValues, std::int8_t* out,
                    float* blockScales) {
  for (std::size_t b = 0; b < cols / blockValues; ++b) {
    const float* v = x + b * blockValues;
    float amax = 0.0f;
    for (std::size_t i = 0; i < blockValues; ++i) {
      amax = std::fmax(amax, std::fabs(v[i]));
    }
    float d = amax / 127.0f;
    float inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
    blockScales[b] = d;
    for (std::size_t i = 0; i < blockValues; ++i) {
      out[b * blockValues + i] = toInt8(v[i] * inverse);
    }
  }
}

// NOLINTNEXTLINE(readability-identifier-naming): ggml's type name
void quantizeQ8_0(const float* x, std::size_t cols, std::int8_t* out, float* blockScales,
                  std::int16_t* /*sums*/) {
  quantizeBlocks(x, cols, kQ8_0Values, out, blockScales);
}

void quantizeQ8K(const float* x, std::size_t cols, std::int8_t* out, float* blockScales,
                 std::int16_t* blockSums) {
  quantizeBlocks(x, cols, kSuperValues, out, blockScales);
  for (std::size_t g = 0; g < cols / kSumValues; ++g) {
    int sum = 0;
    for (std::size_t i = 0; i < kSumValues; ++i) {
      sum += out[g * kSumValues + i];
    }
    blockSums[g] = static_cast<std::int16_t>(sum);
  }
}

float vectorDot(const float* a, const float* b, std::size_t n) {
  // Eight partial sums, so the compiler can use vector registers without reassociating.
  float sums[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t j = 0; j < 8; ++j) {
      sums[j] += a[i + j] * b[i + j];
    }
  }
  float total = 0;
  for (; i < n; ++i) {
    total += a[i] * b[i];
  }
  for (float sum : sums) {
    total += sum;
  }
  return total;
}

void addScaled(float* y, const float* x, float alpha, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    y[i] += alpha * x[i];
  }
}

constexpr IsaKernels kPortable = {
    .f32 = dotF32,
    .f16 = dotF16,
    .bf16 = dotBf16,
    .q8_0 = dotQ8_0,
    .q4_0 = dotQ4_0,
    .q4k = dotQ4K,
    .q6k = dotQ6K,
    .quantizeQ8_0 = quantizeQ8_0,
    .quantizeQ8K = quantizeQ8K,
    .vectorDot = vectorDot,
    .addScaled = addScaled,
};

}  // namespace

const IsaKernels& portableKernels() {
  return kPortable;
}

}  // namespace aibox::kernels::detail
