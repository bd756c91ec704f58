// Rows to and from floats, block by block. The quantisers are plain references: per block (or
// sub-block) they take the range of the values, round the scales so that no value is clipped
// by more than rounding, and round each value to the nearest code.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "runtime/kernels/dot.hpp"
#include "runtime/kernels/kernels.hpp"

namespace aibox::kernels {
namespace {

using detail::BlockQ4_0;
using detail::BlockQ4K;
using detail::BlockQ6K;
using detail::BlockQ8_0;

// The f16 value a scale is stored as, so that codes are chosen for the scale that is read back.
float storedHalf(float value, std::uint16_t& bits) {
  bits = floatToHalf(value);
  return halfToFloat(bits);
}

// Clamped before the conversion to int, which is undefined out of range; NaN gives `low`.
int roundClamped(float value, int low, int high) {
  float rounded = std::nearbyint(value);
  if (!(rounded > static_cast<float>(low))) {
    return low;
  }
  return rounded < static_cast<float>(high) ? static_cast<int>(rounded) : high;
}

float maxAbs(const float* x, std::size_t n) {
  float amax = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
  }
  return amax;
}

// Q8_0 and Q4_0 keep ggml's type names.
// NOLINTBEGIN(readability-identifier-naming)
void quantizeQ8_0(const float* x, BlockQ8_0* blocks, std::size_t count) {
  for (std::size_t b = 0; b < count; ++b, x += 32) {
    float d = storedHalf(maxAbs(x, 32) / 127.0f, blocks[b].d);
    for (int i = 0; i < 32; ++i) {
      blocks[b].qs[i] = static_cast<std::int8_t>(d > 0.0f ? roundClamped(x[i] / d, -127, 127) : 0);
    }
  }
}

void dequantizeQ8_0(const BlockQ8_0* blocks, float* y, std::size_t count) {
  for (std::size_t b = 0; b < count; ++b, y += 32) {
    float d = halfToFloat(blocks[b].d);
    for (int i = 0; i < 32; ++i) {
      y[i] = d * static_cast<float>(blocks[b].qs[i]);
    }
  }
}

// The value of largest magnitude maps to code 0 (-8 d); the other sign reaches +7 d.
void quantizeQ4_0(const float* x, BlockQ4_0* blocks, std::size_t count) {
  for (std::size_t b = 0; b < count; ++b, x += 32) {
    float extreme = 0.0f;
    for (int i = 0; i < 32; ++i) {
      if (std::fabs(x[i]) > std::fabs(extreme)) {
        extreme = x[i];
      }
    }
    float d = storedHalf(extreme / -8.0f, blocks[b].d);
    auto code = [d](float v) { return d != 0.0f ? roundClamped(v / d + 8.0f, 0, 15) : 8; };
    for (int i = 0; i < 16; ++i) {
      blocks[b].qs[i] = static_cast<std::uint8_t>(code(x[i]) | (code(x[i + 16]) << 4));
    }
  }
}

void dequantizeQ4_0(const BlockQ4_0* blocks, float* y, std::size_t count) {
  for (std::size_t b = 0; b < count; ++b, y += 32) {
    float d = halfToFloat(blocks[b].d);
    for (int i = 0; i < 16; ++i) {
      y[i] = d * static_cast<float>((blocks[b].qs[i] & 15) - 8);
      y[i + 16] = d * static_cast<float>((blocks[b].qs[i] >> 4) - 8);
    }
  }
}

// NOLINTEND(readability-identifier-naming)

void packQ4KScales(const std::uint8_t* scales, const std::uint8_t* mins, std::uint8_t* packed) {
  for (int j = 0; j < 4; ++j) {
    packed[j] = static_cast<std::uint8_t>(scales[j] | ((scales[j + 4] >> 4) << 6));
    packed[j + 4] = static_cast<std::uint8_t>(mins[j] | ((mins[j + 4] >> 4) << 6));
    packed[j + 8] = static_cast<std::uint8_t>((scales[j + 4] & 15) | ((mins[j + 4] & 15) << 4));
  }
}

// Per sub-block of 32: offset `min` = -min(0, lowest value), step (highest + min) / 15. The
// mins are rounded to nearest, then each scale rounded up so the highest value still fits.
void quantizeQ4K(const float* x, BlockQ4K* blocks, std::size_t count) {
  for (std::size_t b = 0; b < count; ++b, x += 256) {
    BlockQ4K& block = blocks[b];
    float low[8];
    float high[8];
    float largestStep = 0.0f;
    float largestMin = 0.0f;
    for (std::size_t j = 0; j < 8; ++j) {
      const float* v = x + 32 * j;
      low[j] = std::min(0.0f, *std::min_element(v, v + 32));
      high[j] = *std::max_element(v, v + 32);
      largestStep = std::max(largestStep, (high[j] - low[j]) / 15.0f);
      largestMin = std::max(largestMin, -low[j]);
    }
    float d = storedHalf(largestStep / 63.0f, block.d);
    float dmin = storedHalf(largestMin / 63.0f, block.dmin);
    std::uint8_t scales[8];
    std::uint8_t mins[8];
    for (std::size_t j = 0; j < 8; ++j) {
      mins[j] = static_cast<std::uint8_t>(dmin > 0.0f ? roundClamped(-low[j] / dmin, 0, 63) : 0);
      float offset = dmin * static_cast<float>(mins[j]);
      float needed = (high[j] + offset) / 15.0f;
      scales[j] =
          static_cast<std::uint8_t>(d > 0.0f ? roundClamped(std::ceil(needed / d), 0, 63) : 0);
      float step = d * static_cast<float>(scales[j]);
      const float* v = x + 32 * j;
      std::uint8_t* q = block.qs + 32 * (j / 2);
      int shift = j % 2 == 0 ? 0 : 4;
      for (int l = 0; l < 32; ++l) {
        int code = step > 0.0f ? roundClamped((v[l] + offset) / step, 0, 15) : 0;
        if (shift == 0) {
          q[l] = static_cast<std::uint8_t>(code);
        } else {
          q[l] = static_cast<std::uint8_t>(q[l] | (code << 4));
        }
      }
    }
    packQ4KScales(scales, mins, block.scales);
  }
}

void dequantizeQ4K(const BlockQ4K* blocks, float* y, std::size_t count) {
  for (std::size_t b = 0; b < count; ++b, y += 256) {
    const BlockQ4K& block = blocks[b];
    float d = halfToFloat(block.d);
    float dmin = halfToFloat(block.dmin);
    std::uint8_t scales[8];
    std::uint8_t mins[8];
    detail::unpackQ4KScales(block.scales, scales, mins);
    for (std::size_t c = 0; c < 4; ++c) {
      const std::uint8_t* q = block.qs + 32 * c;
      float stepLow = d * static_cast<float>(scales[2 * c]);
      float offsetLow = dmin * static_cast<float>(mins[2 * c]);
      float stepHigh = d * static_cast<float>(scales[2 * c + 1]);
      float offsetHigh = dmin * static_cast<float>(mins[2 * c + 1]);
      for (int l = 0; l < 32; ++l) {
        y[64 * c + l] = stepLow * static_cast<float>(q[l] & 15) - offsetLow;
        y[64 * c + 32 + l] = stepHigh * static_cast<float>(q[l] >> 4) - offsetHigh;
      }
    }
  }
}

// Where the 6-bit code of value e of a Q6_K block lives (see BlockQ6K).
struct Q6Place {
  int lowByte;   // index into ql
  int lowShift;  // 0 or 4
  int highByte;  // index into qh
  int highShift;
};

Q6Place q6Place(int e) {
  int half = e / 128;
  int quarter = (e % 128) / 32;
  int l = e % 32;
  return {64 * half + 32 * (quarter % 2) + l, quarter < 2 ? 0 : 4, 32 * half + l, 2 * quarter};
}

// Per sub-block of 16: step = largest magnitude / 31; the int8 scales round up so that codes
// stay within -32..31.
void quantizeQ6K(const float* x, BlockQ6K* blocks, std::size_t count) {
  for (std::size_t b = 0; b < count; ++b, x += 256) {
    BlockQ6K& block = blocks[b];
    float steps[16];
    float largest = 0.0f;
    for (std::size_t j = 0; j < 16; ++j) {
      steps[j] = maxAbs(x + 16 * j, 16) / 31.0f;
      largest = std::max(largest, steps[j]);
    }
    float d = storedHalf(largest / 127.0f, block.d);
    std::memset(block.ql, 0, sizeof block.ql);
    std::memset(block.qh, 0, sizeof block.qh);
    for (int j = 0; j < 16; ++j) {
      int scale = d > 0.0f ? roundClamped(std::ceil(steps[j] / d), 0, 127) : 0;
      block.scales[j] = static_cast<std::int8_t>(scale);
      float step = d * static_cast<float>(scale);
      for (int i = 0; i < 16; ++i) {
        int e = 16 * j + i;
        int code = (step > 0.0f ? roundClamped(x[e] / step, -32, 31) : 0) + 32;
        Q6Place place = q6Place(e);
        block.ql[place.lowByte] |= static_cast<std::uint8_t>((code & 15) << place.lowShift);
        block.qh[place.highByte] |= static_cast<std::uint8_t>((code >> 4) << place.highShift);
      }
    }
  }
}

void dequantizeQ6K(const BlockQ6K* blocks, float* y, std::size_t count) {
  for (std::size_t b = 0; b < count; ++b, y += 256) {
    const BlockQ6K& block = blocks[b];
    float d = halfToFloat(block.d);
    for (int e = 0; e < 256; ++e) {
      Q6Place place = q6Place(e);
      int code = ((block.ql[place.lowByte] >> place.lowShift) & 15) |
                 (((block.qh[place.highByte] >> place.highShift) & 3) << 4);
      int sub = e / 16;
      y[e] = d * static_cast<float>(block.scales[sub]) * static_cast<float>(code - 32);
    }
  }
}

// Throws, through rowBytes, for an unknown type or a partial block.
std::size_t checkedBlocks(Type type, std::size_t n) {
  std::size_t bytes = rowBytes(type, n);
  return bytes / typeInfo(static_cast<std::uint32_t>(type))->blockBytes;
}

}  // namespace

namespace detail {

void unpackQ4KScales(const std::uint8_t* packed, std::uint8_t* scales, std::uint8_t* mins) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = packed[j] & 63;
    mins[j] = packed[j + 4] & 63;
    scales[j + 4] = static_cast<std::uint8_t>((packed[j + 8] & 15) | ((packed[j] >> 6) << 4));
    mins[j + 4] = static_cast<std::uint8_t>((packed[j + 8] >> 4) | ((packed[j + 4] >> 6) << 4));
  }
}

}  // namespace detail

void dequantizeRow(Type type, const void* src, float* dst, std::size_t n) {
  std::size_t blocks = checkedBlocks(type, n);
  switch (type) {
    case Type::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case Type::F16:
      for (std::size_t i = 0; i < n; ++i) {
        dst[i] = halfToFloat(static_cast<const std::uint16_t*>(src)[i]);
      }
      return;
    case Type::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        dst[i] = bf16ToFloat(static_cast<const std::uint16_t*>(src)[i]);
      }
      return;
    case Type::Q8_0:
      return dequantizeQ8_0(static_cast<const BlockQ8_0*>(src), dst, blocks);
    case Type::Q4_0:
      return dequantizeQ4_0(static_cast<const BlockQ4_0*>(src), dst, blocks);
    case Type::Q4_K:
      return dequantizeQ4K(static_cast<const BlockQ4K*>(src), dst, blocks);
    case Type::Q6_K:
      return dequantizeQ6K(static_cast<const BlockQ6K*>(src), dst, blocks);
  }
}

void quantizeRow(Type type, const float* src, void* dst, std::size_t n) {
  std::size_t blocks = checkedBlocks(type, n);
  switch (type) {
    case Type::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case Type::F16:
      for (std::size_t i = 0; i < n; ++i) {
        static_cast<std::uint16_t*>(dst)[i] = floatToHalf(src[i]);
      }
      return;
    case Type::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        static_cast<std::uint16_t*>(dst)[i] = floatToBf16(src[i]);
      }
      return;
    case Type::Q8_0:
      return quantizeQ8_0(src, static_cast<BlockQ8_0*>(dst), blocks);
    case Type::Q4_0:
      return quantizeQ4_0(src, static_cast<BlockQ4_0*>(dst), blocks);
    case Type::Q4_K:
      return quantizeQ4K(src, static_cast<BlockQ4K*>(dst), blocks);
    case Type::Q6_K:
      return quantizeQ6K(src, static_cast<BlockQ6K*>(dst), blocks);
  }
}

}  // namespace aibox::kernels
