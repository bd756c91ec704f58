#pragma once
// Private to runtime/kernels: the GGUF block layouts, the layout of quantised activations, and
// the table of dot products each ISA provides to matmul.cpp.
//
// Only types and constants live here, no inline functions: dot_avx2.cpp is compiled with
// -mavx2, and an inline function it emitted could be the copy the linker keeps for everyone.

#include <cstddef>
#include <cstdint>

namespace aibox::kernels::detail {

constexpr std::size_t kQ8_0Values = 32;    // values of a Q8_0 / Q4_0 block
constexpr std::size_t kSuperValues = 256;  // values of a K-quant super-block
constexpr std::size_t kSumValues = 16;     // values summed for each Q8_K activation sum

// ggml block_q8_0: value i = d * qs[i].
// NOLINTNEXTLINE(readability-identifier-naming): ggml's type name
struct BlockQ8_0 {
  std::uint16_t d;  // f16
  std::int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

// ggml block_q4_0: value i = d * ((qs[i] & 15) - 8), value 16 + i = d * ((qs[i] >> 4) - 8).
// NOLINTNEXTLINE(readability-identifier-naming): ggml's type name
struct BlockQ4_0 {
  std::uint16_t d;  // f16
  std::uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18);

// ggml block_q4_K: 8 sub-blocks of 32; value = d * scale[j] * q - dmin * min[j]. `scales` packs
// 8 6-bit scales and 8 6-bit mins (see unpackQ4KScales). Nibbles: byte 32c + l holds value
// 64c + l (low nibble, sub-block 2c) and value 64c + 32 + l (high nibble, sub-block 2c + 1).
struct BlockQ4K {
  std::uint16_t d;     // f16
  std::uint16_t dmin;  // f16
  std::uint8_t scales[12];
  std::uint8_t qs[128];
};
static_assert(sizeof(BlockQ4K) == 144);

// ggml block_q6_K: 16 sub-blocks of 16; value e = d * scales[e / 16] * (q - 32), q 6 bits. In
// half h = e / 128, with quarter k = (e % 128) / 32 and l = e % 32, the low 4 bits of q are
// the low (k < 2) or high (k >= 2) nibble of ql[64h + 32(k % 2) + l] and the high 2 bits are
// bits 2k, 2k + 1 of qh[32h + l].
struct BlockQ6K {
  std::uint8_t ql[128];
  std::uint8_t qh[64];
  std::int8_t scales[16];
  std::uint16_t d;  // f16
};
static_assert(sizeof(BlockQ6K) == 210);

// 6-bit scales and mins of a Q4_K block: bytes 0-3 hold scales 0-3 (low 6 bits) and the top 2
// bits of scales 4-7, bytes 4-7 the same for mins, bytes 8-11 the low 4 bits of scale 4 + i
// (low nibble) and min 4 + i (high nibble).
void unpackQ4KScales(const std::uint8_t* packed, std::uint8_t* scales, std::uint8_t* mins);

// What a weight type's dot product multiplies with.
enum class ActivationKind {
  Float,  // the caller's floats as they are
  Q8_0,   // per 32 values: int8 values, float scale
  Q8K,    // per 256 values: int8 values, float scale, int16 sums of each 16 values
};

// Activations of several tokens. Token t's int8 values (or floats) start at
// data + t * stride, its float block scales at that + scalesOffset, its int16 sums at that +
// sumsOffset. Values and scales start 64-byte aligned for quantised kinds.
struct Activations {
  const std::byte* data;
  std::size_t stride;
  std::size_t scalesOffset;
  std::size_t sumsOffset;
};

// y[t * yStride] = dot(weight row w of `cols` values, token t of a), for t < tokens <= 4.
using DotFn = void (*)(const std::byte* w, std::size_t cols, const Activations& a, unsigned tokens,
                       float* y, std::size_t yStride);
// Quantises one token's `cols` floats into values, block scales and (Q8K only) sums.
using QuantizeFn = void (*)(const float* x, std::size_t cols, std::int8_t* values, float* scales,
                            std::int16_t* sums);

constexpr unsigned kMaxDotTokens = 4;

using VectorDotFn = float (*)(const float* a, const float* b, std::size_t n);
using AddScaledFn = void (*)(float* y, const float* x, float alpha, std::size_t n);

struct IsaKernels {
  DotFn f32;
  DotFn f16;
  DotFn bf16;
  DotFn q8_0;
  DotFn q4_0;
  DotFn q4k;
  DotFn q6k;
  QuantizeFn quantizeQ8_0;
  QuantizeFn quantizeQ8K;
  VectorDotFn vectorDot;
  AddScaledFn addScaled;
};

const IsaKernels& portableKernels();
// Only defined when dot_avx2.cpp is built (x86-64); call only on a CPU with AVX2, FMA, F16C.
const IsaKernels& avx2Kernels();

}  // namespace aibox::kernels::detail
