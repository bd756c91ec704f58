#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "runtime/kernels/kernels.hpp"

namespace aibox::kernels {
namespace {

std::vector<std::uint8_t> quantized(Type type, const std::vector<float>& values) {
  std::vector<std::uint8_t> bytes(rowBytes(type, values.size()));
  quantizeRow(type, values.data(), bytes.data(), values.size());
  return bytes;
}

std::vector<float> dequantized(Type type, const std::vector<std::uint8_t>& bytes, std::size_t n) {
  std::vector<float> values(n);
  dequantizeRow(type, bytes.data(), values.data(), n);
  return values;
}

float maxAbs(const std::vector<float>& v, std::size_t first, std::size_t count) {
  float amax = 0.0f;
  for (std::size_t i = first; i < first + count; ++i) {
    amax = std::max(amax, std::fabs(v[i]));
  }
  return amax;
}

// Gaussian values, then blocks that are awkward for a quantiser: zeros, one sign only, a
// constant, a lone outlier, and a scale far from 1.
std::vector<float> testRow() {
  std::mt19937 random(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(std::size_t{256} * 12);
  for (auto& v : row) {
    v = normal(random);
  }
  auto block = [&row](std::ptrdiff_t index) { return row.begin() + 256 * index; };
  std::fill(block(1), block(2), 0.0f);
  std::transform(block(2), block(3), block(2), [](float v) { return std::fabs(v) + 0.5f; });
  std::transform(block(3), block(4), block(3), [](float v) { return -std::fabs(v) - 2.0f; });
  std::fill(block(4), block(5), 0.75f);
  row[256 * 5 + 77] = 40.0f;
  std::transform(block(6), block(7), block(6), [](float v) { return v * 1e-3f; });
  std::transform(block(7), block(8), block(7), [](float v) { return v * 300.0f; });
  std::fill(block(8), block(8) + 64, 0.0f);  // zero sub-blocks beside non-zero ones
  return row;
}

// Bound on |error| of value i, from the values of its block (stated per type in the test).
template <typename Bound>
void expectWithin(Type type, const std::vector<float>& row, Bound bound) {
  auto restored = dequantized(type, quantized(type, row), row.size());
  for (std::size_t i = 0; i < row.size(); ++i) {
    ASSERT_LE(std::fabs(restored[i] - row[i]), bound(i)) << "value " << i << " = " << row[i];
  }
}

double relativeRms(Type type, std::size_t blocks) {
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(256 * blocks);
  for (auto& v : row) {
    v = normal(random);
  }
  auto restored = dequantized(type, quantized(type, row), row.size());
  double error = 0.0;
  double signal = 0.0;
  for (std::size_t i = 0; i < row.size(); ++i) {
    error += (restored[i] - row[i]) * (restored[i] - row[i]);
    signal += row[i] * row[i];
  }
  return std::sqrt(error / signal);
}

TEST(QuantizeTest, F32IsExact) {
  auto row = testRow();
  expectWithin(Type::F32, row, [](std::size_t) { return 0.0f; });
}

// Half an ulp: relative 2^-11, or 2^-25 among the subnormals (below 2^-14).
TEST(QuantizeTest, F16WithinHalfAnUlp) {
  auto row = testRow();
  expectWithin(Type::F16, row,
               [&row](std::size_t i) { return std::max(std::fabs(row[i]) * 0x1p-11f, 0x1p-25f); });
}

TEST(QuantizeTest, Bf16WithinHalfAnUlp) {
  auto row = testRow();
  expectWithin(Type::BF16, row, [&row](std::size_t i) { return std::fabs(row[i]) * 0x1p-8f; });
}

// Q8_0: half a step of amax / 127 (the f16 scale adds a relative 2^-11).
TEST(QuantizeTest, Q8_0WithinHalfAStep) {
  auto row = testRow();
  expectWithin(Type::Q8_0, row,
               [&row](std::size_t i) { return maxAbs(row, i / 32 * 32, 32) / 254.0f * 1.001f; });
  EXPECT_LT(relativeRms(Type::Q8_0, 8), 0.01);
}

// Q4_0: the extreme value is exact at -8 steps, the other sign may clip at +7: one step of
// amax / 8 at worst.
TEST(QuantizeTest, Q4_0WithinAStep) {
  auto row = testRow();
  expectWithin(Type::Q4_0, row,
               [&row](std::size_t i) { return maxAbs(row, i / 32 * 32, 32) / 8.0f * 1.001f; });
  EXPECT_LT(relativeRms(Type::Q4_0, 8), 0.13);
}

// Q4_K: half a sub-block step (range / 15, rounded up to the 6-bit scale grid) plus half of
// the rounding of the 6-bit min: under 0.085 of the super-block's largest magnitude.
TEST(QuantizeTest, Q4KWithinHalfAStepAndMinRounding) {
  auto row = testRow();
  expectWithin(Type::Q4_K, row,
               [&row](std::size_t i) { return maxAbs(row, i / 256 * 256, 256) * 0.085f; });
  EXPECT_LT(relativeRms(Type::Q4_K, 8), 0.11);
}

// Q6_K: half a step of the sub-block's amax / 31, the int8 scale rounded up by at most one
// unit of d = super-block amax / 31 / 127.
TEST(QuantizeTest, Q6KWithinHalfAStep) {
  auto row = testRow();
  expectWithin(Type::Q6_K, row, [&row](std::size_t i) {
    return maxAbs(row, i / 16 * 16, 16) / 62.0f * 1.001f +
           maxAbs(row, i / 256 * 256, 256) / (31.0f * 127.0f * 2.0f) * 1.01f;
  });
  EXPECT_LT(relativeRms(Type::Q6_K, 8), 0.035);
}

TEST(QuantizeTest, ZerosStayZero) {
  std::vector<float> zeros(512, 0.0f);
  for (const auto& info : supportedTypes()) {
    auto restored = dequantized(info.type, quantized(info.type, zeros), zeros.size());
    EXPECT_EQ(restored, zeros) << info.name;
  }
}

TEST(QuantizeTest, RejectsPartialBlocks) {
  std::vector<float> values(48);
  std::vector<std::uint8_t> bytes(1024);
  EXPECT_THROW(quantizeRow(Type::Q8_0, values.data(), bytes.data(), 48), std::invalid_argument);
  EXPECT_THROW(dequantizeRow(Type::Q4_K, bytes.data(), values.data(), 48), std::invalid_argument);
}

// ---- Hand-built blocks: the byte layout of each type, pinned by values worked out by hand
// from the ggml block descriptions.

void putHalf(std::vector<std::uint8_t>& bytes, std::size_t offset, std::uint16_t value) {
  bytes[offset] = static_cast<std::uint8_t>(value & 0xff);
  bytes[offset + 1] = static_cast<std::uint8_t>(value >> 8);
}

TEST(BlockLayoutTest, F16AndBf16AreLittleEndian) {
  std::vector<std::uint8_t> bytes = {0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f, 0x49, 0x40};
  std::vector<float> out(2);
  dequantizeRow(Type::F16, bytes.data(), out.data(), 2);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.0f}));
  dequantizeRow(Type::BF16, bytes.data() + 4, out.data(), 2);
  EXPECT_EQ(out, (std::vector<float>{1.0f, 3.140625f}));
}

// Q8_0: f16 d, then 32 int8; value i = d * q[i].
TEST(BlockLayoutTest, Q8_0) {
  std::vector<std::uint8_t> bytes(34);
  putHalf(bytes, 0, 0x3800);  // 0.5
  for (int i = 0; i < 32; ++i) {
    bytes[2 + i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(8 * i - 128));
  }
  auto out = dequantized(Type::Q8_0, bytes, 32);
  EXPECT_EQ(out[0], -64.0f);
  EXPECT_EQ(out[16], 0.0f);
  EXPECT_EQ(out[31], 60.0f);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(out[i], 0.5f * static_cast<float>(8 * i - 128)) << i;
  }
}

// Q4_0: f16 d, then 16 bytes; byte j holds value j (low nibble) and value j + 16 (high
// nibble); value = d * (nibble - 8).
TEST(BlockLayoutTest, Q4_0) {
  std::vector<std::uint8_t> bytes(18);
  putHalf(bytes, 0, 0xc000);  // -2
  for (int j = 0; j < 16; ++j) {
    bytes[2 + j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
  }
  auto out = dequantized(Type::Q4_0, bytes, 32);
  EXPECT_EQ(out[0], 16.0f);
  EXPECT_EQ(out[8], 0.0f);
  EXPECT_EQ(out[15], -14.0f);
  EXPECT_EQ(out[16], -14.0f);
  EXPECT_EQ(out[31], 16.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], -2.0f * static_cast<float>(j - 8)) << j;
    EXPECT_EQ(out[16 + j], -2.0f * static_cast<float>(7 - j)) << j;
  }
}

// Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles. Scales
// {1, 2, 3, 4, 17, 33, 49, 63} and mins {0, 5, 10, 15, 20, 40, 60, 63}: bytes 0-3 are scale j
// plus the top 2 bits of scale j + 4 in bits 6-7, bytes 4-7 the same for mins, bytes 8-11 the
// low 4 bits of scale j + 4 and (high nibble) of min j + 4. Byte 32c + l of the nibbles holds
// value 64c + l (low nibble) and 64c + 32 + l (high nibble); value = d * scale * q - dmin * min.
std::vector<std::uint8_t> handBuiltQ4K() {
  std::vector<std::uint8_t> bytes(144);
  putHalf(bytes, 0, 0x3c00);  // d = 1
  putHalf(bytes, 2, 0x3800);  // dmin = 0.5
  const std::uint8_t packed[12] = {0x41, 0x82, 0xc3, 0xc4, 0x40, 0x85,
                                   0xca, 0xcf, 0x41, 0x81, 0xc1, 0xff};
  std::memcpy(bytes.data() + 4, packed, sizeof packed);
  for (int i = 0; i < 128; ++i) {
    bytes[16 + i] = static_cast<std::uint8_t>((i & 15) | (((i >> 3) & 15) << 4));
  }
  return bytes;
}

TEST(BlockLayoutTest, Q4K) {
  auto out = dequantized(Type::Q4_K, handBuiltQ4K(), 256);
  EXPECT_EQ(out[5], 5.0f);      // sub-block 0, byte 5 low: 1 * 5 - 0
  EXPECT_EQ(out[40], -0.5f);    // sub-block 1, byte 8 high (1): 2 * 1 - 0.5 * 5
  EXPECT_EQ(out[100], 8.5f);    // sub-block 3, byte 36 high (4): 4 * 4 - 0.5 * 15
  EXPECT_EQ(out[150], 92.0f);   // sub-block 4, byte 86 low (6): 17 * 6 - 0.5 * 20
  EXPECT_EQ(out[200], 362.0f);  // sub-block 6, byte 104 low (8): 49 * 8 - 0.5 * 60
  EXPECT_EQ(out[255], 913.5f);  // sub-block 7, byte 127 high (15): 63 * 15 - 0.5 * 63
  const float scales[8] = {1, 2, 3, 4, 17, 33, 49, 63};
  const float mins[8] = {0, 5, 10, 15, 20, 40, 60, 63};
  for (int e = 0; e < 256; ++e) {
    int chunk = e / 64;
    int within = e % 64;
    int index = 32 * chunk + within % 32;  // byte `index` is (index & 15) | (index >> 3 & 15) << 4
    int code = within < 32 ? (index & 15) : ((index >> 3) & 15);
    int sub = 2 * chunk + within / 32;
    EXPECT_EQ(out[e], scales[sub] * static_cast<float>(code) - 0.5f * mins[sub]) << e;
  }
}

// Q6_K: ql[128], qh[64], int8 scales[16], f16 d. Value e (half h = e / 128, quarter
// k = e % 128 / 32, l = e % 32): low 4 bits from ql[64h + 32(k % 2) + l] (low nibble for
// k < 2, high for k >= 2), high 2 bits from bits 2k..2k+1 of qh[32h + l];
// value = d * scales[e / 16] * (q - 32).
TEST(BlockLayoutTest, Q6K) {
  std::vector<std::uint8_t> bytes(210);
  for (int i = 0; i < 128; ++i) {
    bytes[i] = static_cast<std::uint8_t>(i);
  }
  for (int i = 0; i < 64; ++i) {
    bytes[128 + i] = static_cast<std::uint8_t>((i * 37) & 0xff);
  }
  for (int j = 0; j < 16; ++j) {
    bytes[192 + j] = static_cast<std::uint8_t>(j + 1);
  }
  bytes[192 + 15] = static_cast<std::uint8_t>(-16);
  putHalf(bytes, 208, 0x3400);  // d = 0.25
  auto out = dequantized(Type::Q6_K, bytes, 256);
  EXPECT_EQ(out[0], -8.0f);      // ql[0] low 0, qh[0] bits 0-1: 0 -> q 0; scale 1
  EXPECT_EQ(out[33], -11.25f);   // ql[33] low 1, qh[1] = 37 bits 2-3: 1 -> q 17; scale 3
  EXPECT_EQ(out[70], -20.0f);    // ql[6] high 0, qh[6] = 222 bits 4-5: 1 -> q 16; scale 5
  EXPECT_EQ(out[127], -26.0f);   // ql[63] high 3, qh[31] = 123 bits 6-7: 1 -> q 19; scale 8
  EXPECT_EQ(out[161], -41.25f);  // ql[97] low 1, qh[33] = 197 bits 2-3: 1 -> q 17; scale 11
  EXPECT_EQ(out[200], -91.0f);   // ql[72] high 4, qh[40] = 200 bits 4-5: 0 -> q 4; scale 13
  EXPECT_EQ(out[255], 100.0f);   // ql[127] high 7, qh[63] = 27 bits 6-7: 0 -> q 7; scale -16
}

}  // namespace
}  // namespace aibox::kernels
