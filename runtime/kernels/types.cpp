// The type table and the scalar half / bfloat16 conversions.

#include <bit>
#include <stdexcept>

#include "runtime/kernels/kernels.hpp"

namespace aibox::kernels {

const std::vector<TypeInfo>& supportedTypes() {
  static const std::vector<TypeInfo> types = {
      {Type::F32, "F32", 1, 4},     {Type::F16, "F16", 1, 2},       {Type::Q4_0, "Q4_0", 32, 18},
      {Type::Q8_0, "Q8_0", 32, 34}, {Type::Q4_K, "Q4_K", 256, 144}, {Type::Q6_K, "Q6_K", 256, 210},
      {Type::BF16, "BF16", 1, 2},
  };
  return types;
}

std::optional<TypeInfo> typeInfo(std::uint32_t id) {
  for (const auto& info : supportedTypes()) {
    if (static_cast<std::uint32_t>(info.type) == id) {
      return info;
    }
  }
  return std::nullopt;
}

std::string supportedTypeNames() {
  return "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K";
}

std::size_t rowBytes(Type type, std::size_t elements) {
  auto info = typeInfo(static_cast<std::uint32_t>(type));
  if (!info) {
    throw std::invalid_argument("tensor type " + std::to_string(static_cast<std::uint32_t>(type)) +
                                " is not one of " + supportedTypeNames());
  }
  if (elements % info->blockElements != 0) {
    throw std::invalid_argument("a row of " + std::to_string(elements) + " " +
                                std::string(info->name) + " values is not a whole number of " +
                                std::to_string(info->blockElements) + "-value blocks");
  }
  return elements / info->blockElements * info->blockBytes;
}

float halfToFloat(std::uint16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) | sign);
  }
  if (exponent == 0x1f) {
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

std::uint16_t floatToHalf(float f) {
  auto bits = std::bit_cast<std::uint32_t>(f);
  auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    // NaN stays NaN (quiet), keeping the top of its payload.
    return static_cast<std::uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  }
  if (magnitude >= 0x477ff000u) {
    // 65520 and up round to infinity.
    return static_cast<std::uint16_t>(sign | 0x7c00u);
  }
  if (magnitude < 0x38800000u) {
    // Below 2^-14 the result is subnormal: adding 0.5 puts round(|f| / 2^-24) in the low
    // mantissa bits, rounded to nearest even by the FPU (0x400 is the smallest normal).
    float shifted = std::bit_cast<float>(magnitude) + 0.5f;
    return static_cast<std::uint16_t>(sign | (std::bit_cast<std::uint32_t>(shifted) - 0x3f000000u));
  }
  // Rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even; a carry
  // into the exponent is the correct result.
  std::uint32_t odd = (magnitude >> 13) & 1u;
  magnitude += 0xc8000fffu + odd;
  return static_cast<std::uint16_t>(sign | (magnitude >> 13));
}

float bf16ToFloat(std::uint16_t h) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

std::uint16_t floatToBf16(float f) {
  auto bits = std::bit_cast<std::uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<std::uint16_t>((bits >> 16) | 0x40u);  // quiet NaN, never infinity
  }
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

}  // namespace aibox::kernels
