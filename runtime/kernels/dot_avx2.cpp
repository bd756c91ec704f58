// Dot products with AVX2, FMA and F16C; compiled with -mavx2 -mfma -mf16c and reached only
// through avx2Kernels() after matmul.cpp's CPU check. Everything here has internal linkage
// and no other header's inline functions or templates are used, so no AVX2 instruction can
// leak into code that runs on a CPU without it.
//
// Integer dot products use vpmaddubsw (unsigned x signed bytes to int16 pairs), then vpmaddwd
// (int16 pairs to int32, times the sub-block scale where the type has one): 32 values per
// pair of instructions, one float multiply-add per block.

#include <immintrin.h>

#include <cstring>

#include "runtime/kernels/dot.hpp"

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

__m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

__m128i load128(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

float half(std::uint16_t bits) {
  return _cvtsh_ss(bits);
}

// Weights stream from memory once per call, and the hardware prefetchers stop at each 4 KiB
// page: asking for the lines 3 KiB ahead keeps enough reads in flight to reach the memory
// bandwidth (Q4_K generation on a 16-core Xeon: 72% of read bandwidth without, ~95% with).
constexpr std::uintptr_t kPrefetchDistance = 3072;

// Prefetches the lines `kPrefetchDistance` past [p, p + bytes); past the tensor's end they
// are harmless. Computed on integers: the address may lie outside any object.
void prefetchAhead(const void* p, std::uintptr_t bytes) {
  std::uintptr_t ahead = reinterpret_cast<std::uintptr_t>(p) + kPrefetchDistance;
  for (std::uintptr_t offset = 0; offset < bytes; offset += 64) {
    _mm_prefetch(
        reinterpret_cast<const char*>(ahead + offset),  // NOLINT(performance-no-int-to-ptr)
        _MM_HINT_T0);
  }
}

float sumLanes(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float maxLanes(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// ---- F32, F16, BF16: weights converted to float 8 at a time, two accumulators per token.

struct F32Weights {
  const float* row;
  const void* at(std::size_t k) const { return row + k; }
  __m256 eight(std::size_t k) const { return _mm256_loadu_ps(row + k); }
  float one(std::size_t k) const { return row[k]; }
};

struct F16Weights {
  const std::uint16_t* row;
  const void* at(std::size_t k) const { return row + k; }
  __m256 eight(std::size_t k) const { return _mm256_cvtph_ps(load128(row + k)); }
  float one(std::size_t k) const { return half(row[k]); }
};

struct Bf16Weights {
  const std::uint16_t* row;
  const void* at(std::size_t k) const { return row + k; }
  __m256 eight(std::size_t k) const {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(row + k)), 16));
  }
  float one(std::size_t k) const {
    std::uint32_t bits = static_cast<std::uint32_t>(row[k]) << 16;
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }
};

template <unsigned NT, typename Weights>
void dotFloats(Weights w, std::size_t cols, const Activations& a, float* y, std::size_t yStride) {
  const float* x[NT];
  __m256 acc0[NT];
  __m256 acc1[NT];
  for (unsigned t = 0; t < NT; ++t) {
    x[t] = floats(a, t);
    acc0[t] = _mm256_setzero_ps();
    acc1[t] = _mm256_setzero_ps();
  }
  std::size_t k = 0;
  for (; k + 16 <= cols; k += 16) {
    prefetchAhead(w.at(k), 64);
    __m256 w0 = w.eight(k);
    __m256 w1 = w.eight(k + 8);
    for (unsigned t = 0; t < NT; ++t) {
      acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + k), acc0[t]);
      acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[t] + k + 8), acc1[t]);
    }
  }
  if (k + 8 <= cols) {
    __m256 w0 = w.eight(k);
    for (unsigned t = 0; t < NT; ++t) {
      acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + k), acc0[t]);
    }
    k += 8;
  }
  for (unsigned t = 0; t < NT; ++t) {
    float sum = sumLanes(_mm256_add_ps(acc0[t], acc1[t]));
    for (std::size_t i = k; i < cols; ++i) {
      sum += w.one(i) * x[t][i];
    }
    y[t * yStride] = sum;
  }
}

struct F32Dot {
  template <unsigned NT>
  static void run(const std::byte* w, std::size_t cols, const Activations& a, float* y,
                  std::size_t yStride) {
    dotFloats<NT>(F32Weights{reinterpret_cast<const float*>(w)}, cols, a, y, yStride);
  }
};

struct F16Dot {
  template <unsigned NT>
  static void run(const std::byte* w, std::size_t cols, const Activations& a, float* y,
                  std::size_t yStride) {
    dotFloats<NT>(F16Weights{reinterpret_cast<const std::uint16_t*>(w)}, cols, a, y, yStride);
  }
};

struct Bf16Dot {
  template <unsigned NT>
  static void run(const std::byte* w, std::size_t cols, const Activations& a, float* y,
                  std::size_t yStride) {
    dotFloats<NT>(Bf16Weights{reinterpret_cast<const std::uint16_t*>(w)}, cols, a, y, yStride);
  }
};

// ---- Q8_0 and Q4_0 against Q8_0 activations.

// The 32 signed weights of a Q4_0 block: low nibbles are values 0-15, high nibbles 16-31.
// The bytes go to both 128-bit lanes by a broadcast load and the upper lane shifts by 4: no
// lane insert, which would compete for the shuffle port.
// NOLINTNEXTLINE(readability-identifier-naming): ggml's type name
__m256i q4_0Values(const BlockQ4_0& block) {
  __m256i packed = _mm256_broadcastsi128_si256(load128(block.qs));
  __m256i nibbles = _mm256_srlv_epi32(packed, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
  return _mm256_sub_epi8(_mm256_and_si256(nibbles, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
}

// acc[t] += d * scale_t * (w . x_t) over one block of 32 signed weights. vpmaddubsw wants one
// unsigned operand: |w| times x with w's sign moved onto it.
template <unsigned NT>
void addBlock(__m256i w, float d, std::size_t b, const std::int8_t* const* x,
              const float* const* xScales, __m256* acc) {
  __m256i magnitude = _mm256_sign_epi8(w, w);
  for (unsigned t = 0; t < NT; ++t) {
    __m256i signedX = _mm256_sign_epi8(load256(x[t] + 32 * b), w);
    __m256i pairs = _mm256_maddubs_epi16(magnitude, signedX);
    __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
    __m256 scale = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_broadcast_ss(xScales[t] + b));
    acc[t] = _mm256_fmadd_ps(scale, dot, acc[t]);
  }
}

// Two blocks per step into separate accumulators, so consecutive FMAs do not wait on each other.
template <unsigned NT, typename Block, typename Decode>
void dotBlocks32(const Block* blocks, std::size_t cols, const Activations& a, float* y,
                 std::size_t yStride, Decode decode) {
  const std::int8_t* x[NT];
  const float* xScales[NT];
  __m256 acc0[NT];
  __m256 acc1[NT];
  for (unsigned t = 0; t < NT; ++t) {
    x[t] = values(a, t);
    xScales[t] = scales(a, t);
    acc0[t] = _mm256_setzero_ps();
    acc1[t] = _mm256_setzero_ps();
  }
  std::size_t count = cols / kQ8_0Values;
  std::size_t b = 0;
  for (; b + 2 <= count; b += 2) {
    prefetchAhead(blocks + b, 2 * sizeof(Block));
    addBlock<NT>(decode(blocks[b]), half(blocks[b].d), b, x, xScales, acc0);
    addBlock<NT>(decode(blocks[b + 1]), half(blocks[b + 1].d), b + 1, x, xScales, acc1);
  }
  if (b < count) {
    addBlock<NT>(decode(blocks[b]), half(blocks[b].d), b, x, xScales, acc0);
  }
  for (unsigned t = 0; t < NT; ++t) {
    y[t * yStride] = sumLanes(_mm256_add_ps(acc0[t], acc1[t]));
  }
}

// NOLINTNEXTLINE(readability-identifier-naming): ggml's type name
struct Q8_0Dot {
  template <unsigned NT>
  static void run(const std::byte* w, std::size_t cols, const Activations& a, float* y,
                  std::size_t yStride) {
    dotBlocks32<NT>(reinterpret_cast<const BlockQ8_0*>(w), cols, a, y, yStride,
                    [](const BlockQ8_0& block) { return load256(block.qs); });
  }
};

// NOLINTNEXTLINE(readability-identifier-naming): ggml's type name
struct Q4_0Dot {
  template <unsigned NT>
  static void run(const std::byte* w, std::size_t cols, const Activations& a, float* y,
                  std::size_t yStride) {
    dotBlocks32<NT>(reinterpret_cast<const BlockQ4_0*>(w), cols, a, y, yStride, q4_0Values);
  }
};

// ---- Q4_K against Q8_K activations: sum_j d scale_j (q . x)_j - dmin min_j sum_j(x).

// Scales 0-7 and mins 0-7 of a Q4_K block as bytes 0-7 and 8-15 (layout in dot.hpp). Loads
// 16 bytes from `scales`, the last 4 of which are nibbles of the same block and unused. As
// words w0 w1 w2: [w0, w2, w1, w2 >> 4] holds the low bits, and [-, w0 >> 2, -, w1 >> 2] moves
// bits 6-7 of the first words to bits 4-5 of scales and mins 4-7.
__m128i q4kScalesAndMins(const BlockQ4K& block) {
  __m128i packed = load128(block.scales);
  __m128i low = _mm_srlv_epi32(_mm_shuffle_epi32(packed, _MM_SHUFFLE(2, 1, 2, 0)),
                               _mm_setr_epi32(0, 0, 0, 4));
  low = _mm_and_si128(low, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  __m128i top = _mm_srlv_epi32(_mm_shuffle_epi32(packed, _MM_SHUFFLE(1, 1, 0, 0)),
                               _mm_setr_epi32(0, 2, 0, 2));
  top = _mm_and_si128(top, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(low, top);
}

struct Q4KDot {
  template <unsigned NT>
  static void run(const std::byte* w, std::size_t cols, const Activations& a, float* y,
                  std::size_t yStride) {
    const auto* blocks = reinterpret_cast<const BlockQ4K*>(w);
    const std::int8_t* x[NT];
    const float* xScales[NT];
    const std::int16_t* xSums[NT];
    __m256 acc[NT];
    __m256 accMins[NT];
    for (unsigned t = 0; t < NT; ++t) {
      x[t] = values(a, t);
      xScales[t] = scales(a, t);
      xSums[t] = sums(a, t);
      acc[t] = _mm256_setzero_ps();
      accMins[t] = _mm256_setzero_ps();
    }
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    // Bytes 8-15 (the mins) each twice, to pair with the 16 sums of 16 values.
    const __m128i minPairs =
        _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    // Scale j in both halves of word j: broadcast from memory, a vpmaddwd operand costs a load
    // instead of a shuffle (the shuffle port is the bottleneck on Intel cores).
    alignas(32) std::int32_t scalePairs[8];
    for (std::size_t b = 0; b < cols / kSuperValues; ++b) {
      const BlockQ4K& block = blocks[b];
      prefetchAhead(&block, sizeof block);
      __m128i scalesMins = q4kScalesAndMins(block);
      __m256i scaleWords = _mm256_cvtepu8_epi32(scalesMins);
      _mm256_store_si256(reinterpret_cast<__m256i*>(scalePairs),
                         _mm256_or_si256(scaleWords, _mm256_slli_epi32(scaleWords, 16)));
      __m256i subMins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scalesMins, minPairs));

      __m256i total[NT];
      for (unsigned t = 0; t < NT; ++t) {
        total[t] = _mm256_setzero_si256();
      }
      for (std::size_t c = 0; c < 4; ++c) {
        __m256i q = load256(block.qs + 32 * c);
        __m256i qLow = _mm256_and_si256(q, low4);
        __m256i qHigh = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        __m256i scaleLow = _mm256_set1_epi32(scalePairs[2 * c]);
        __m256i scaleHigh = _mm256_set1_epi32(scalePairs[2 * c + 1]);
        for (unsigned t = 0; t < NT; ++t) {
          const std::int8_t* xc = x[t] + 256 * b + 64 * c;
          __m256i low = _mm256_madd_epi16(_mm256_maddubs_epi16(qLow, load256(xc)), scaleLow);
          __m256i high =
              _mm256_madd_epi16(_mm256_maddubs_epi16(qHigh, load256(xc + 32)), scaleHigh);
          total[t] = _mm256_add_epi32(total[t], _mm256_add_epi32(low, high));
        }
      }
      __m256 d = _mm256_set1_ps(half(block.d));
      __m256 dmin = _mm256_set1_ps(half(block.dmin));
      for (unsigned t = 0; t < NT; ++t) {
        __m256 xScale = _mm256_broadcast_ss(xScales[t] + b);
        __m256i offsets = _mm256_madd_epi16(load256(xSums[t] + 16 * b), subMins);
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, xScale), _mm256_cvtepi32_ps(total[t]), acc[t]);
        accMins[t] =
            _mm256_fmadd_ps(_mm256_mul_ps(dmin, xScale), _mm256_cvtepi32_ps(offsets), accMins[t]);
      }
    }
    for (unsigned t = 0; t < NT; ++t) {
      y[t * yStride] = sumLanes(_mm256_sub_ps(acc[t], accMins[t]));
    }
  }
};

// ---- Q6_K against Q8_K activations: codes 0..63 times x, minus 32 * scale_j * sum_j(x).

struct Q6KDot {
  template <unsigned NT>
  static void run(const std::byte* w, std::size_t cols, const Activations& a, float* y,
                  std::size_t yStride) {
    const auto* blocks = reinterpret_cast<const BlockQ6K*>(w);
    const std::int8_t* x[NT];
    const float* xScales[NT];
    const std::int16_t* xSums[NT];
    __m256 acc[NT];
    for (unsigned t = 0; t < NT; ++t) {
      x[t] = values(a, t);
      xScales[t] = scales(a, t);
      xSums[t] = sums(a, t);
      acc[t] = _mm256_setzero_ps();
    }
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i low2 = _mm256_set1_epi8(0x03);
    for (std::size_t b = 0; b < cols / kSuperValues; ++b) {
      const BlockQ6K& block = blocks[b];
      prefetchAhead(&block, sizeof block);
      __m256i allScales = _mm256_cvtepi8_epi16(load128(block.scales));
      __m256i total[NT];
      for (unsigned t = 0; t < NT; ++t) {
        __m256i offsets = _mm256_madd_epi16(load256(xSums[t] + 16 * b), allScales);
        total[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offsets, 5));
      }
      for (std::size_t h = 0; h < 2; ++h) {
        std::int64_t scaleBytes;
        std::memcpy(&scaleBytes, block.scales + 8 * h, sizeof scaleBytes);
        // Scales 8h..8h+7 as int16, the same in both 128-bit lanes.
        __m256i halfScales =
            _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_cvtsi64_si128(scaleBytes)));
        __m256i ql0 = load256(block.ql + 64 * h);
        __m256i ql1 = load256(block.ql + 64 * h + 32);
        __m256i qh = load256(block.qh + 32 * h);
        __m256i q[4] = {
            _mm256_or_si256(_mm256_and_si256(ql0, low4),
                            _mm256_slli_epi16(_mm256_and_si256(qh, low2), 4)),
            _mm256_or_si256(_mm256_and_si256(ql1, low4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), low2), 4)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), low2), 4)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), low2), 4)),
        };
        for (std::size_t k = 0; k < 4; ++k) {
          // Values 0-15 of quarter k use scale 2k of this half (low lane), 16-31 scale 2k + 1.
          __m256i scale = _mm256_shuffle_epi8(
              halfScales,
              _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(0x0302 + 0x0404 * k)),
                               _mm_set1_epi16(static_cast<short>(0x0100 + 0x0404 * k))));
          for (unsigned t = 0; t < NT; ++t) {
            __m256i xq = load256(x[t] + 256 * b + 128 * h + 32 * k);
            total[t] = _mm256_add_epi32(total[t],
                                        _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], xq), scale));
          }
        }
      }
      __m256 d = _mm256_set1_ps(half(block.d));
      for (unsigned t = 0; t < NT; ++t) {
        __m256 scale = _mm256_mul_ps(d, _mm256_broadcast_ss(xScales[t] + b));
        acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(total[t]), acc[t]);
      }
    }
    for (unsigned t = 0; t < NT; ++t) {
      y[t * yStride] = sumLanes(acc[t]);
    }
  }
};

template <typename Kernel>
void dispatch(const std::byte* w, std::size_t cols, const Activations& a, unsigned tokens, float* y,
              std::size_t yStride) {
  switch (tokens) {
    case 1:
      return Kernel::template run<1>(w, cols, a, y, yStride);
    case 2:
      return Kernel::template run<2>(w, cols, a, y, yStride);
    case 3:
      return Kernel::template run<3>(w, cols, a, y, yStride);
    default:
      return Kernel::template run<4>(w, cols, a, y, yStride);
  }
}

// ---- Activations: 32 floats times 127 / amax, rounded to nearest even, as int8.

__m256i roundToInt8(const float* v, __m256 multiplier) {
  __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v), multiplier));
  __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 8), multiplier));
  __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 16), multiplier));
  __m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + 24), multiplier));
  // The packs work per 128-bit lane; the permute puts the 4-byte groups back in order.
  __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

float absMax(const float* v, std::size_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 amax = _mm256_setzero_ps();
  for (std::size_t i = 0; i < n; i += 8) {
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(v + i)));
  }
  return maxLanes(amax);
}

void quantizeBlocks(const float* x, std::size_t cols, std::size_t blockValues, std::int8_t* out,
                    float* blockScales) {
  for (std::size_t b = 0; b < cols / blockValues; ++b) {
    const float* v = x + b * blockValues;
    float amax = absMax(v, blockValues);
    blockScales[b] = amax / 127.0f;
    __m256 multiplier = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    for (std::size_t i = 0; i < blockValues; i += 32) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * blockValues + i),
                          roundToInt8(v + i, multiplier));
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
  for (std::size_t i = 0; i < cols; i += 32) {
    // Pair sums, then quads: int32 lanes 0-3 cover values 0-15, lanes 4-7 values 16-31.
    __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), load256(out + i));
    __m256i quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    __m128i halves =
        _mm_hadd_epi32(_mm256_castsi256_si128(quads), _mm256_extracti128_si256(quads, 1));
    halves = _mm_hadd_epi32(halves, halves);
    blockSums[i / 16] = static_cast<std::int16_t>(_mm_cvtsi128_si32(halves));
    blockSums[i / 16 + 1] = static_cast<std::int16_t>(_mm_extract_epi32(halves, 1));
  }
}

float vectorDot(const float* a, const float* b, std::size_t n) {
  __m256 sum0 = _mm256_setzero_ps();
  __m256 sum1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
    sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), sum1);
  }
  for (; i + 8 <= n; i += 8) {
    sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
  }
  __m256 sum = _mm256_add_ps(sum0, sum1);
  __m128 half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  half = _mm_add_ps(half, _mm_movehl_ps(half, half));
  half = _mm_add_ss(half, _mm_movehdup_ps(half));
  float total = _mm_cvtss_f32(half);
  for (; i < n; ++i) {
    total += a[i] * b[i];
  }
  return total;
}

void addScaled(float* y, const float* x, float alpha, std::size_t n) {
  __m256 scale = _mm256_set1_ps(alpha);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(scale, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) {
    y[i] += alpha * x[i];
  }
}

constexpr IsaKernels kAvx2 = {
    .f32 = dispatch<F32Dot>,
    .f16 = dispatch<F16Dot>,
    .bf16 = dispatch<Bf16Dot>,
    .q8_0 = dispatch<Q8_0Dot>,
    .q4_0 = dispatch<Q4_0Dot>,
    .q4k = dispatch<Q4KDot>,
    .q6k = dispatch<Q6KDot>,
    .quantizeQ8_0 = quantizeQ8_0,
    .quantizeQ8K = quantizeQ8K,
    .vectorDot = vectorDot,
    .addScaled = addScaled,
};

}  // namespace

const IsaKernels& avx2Kernels() {
  return kAvx2;
}

}  // namespace aibox::kernels::detail
