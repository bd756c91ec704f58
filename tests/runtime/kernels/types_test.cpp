#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "runtime/kernels/kernels.hpp"

namespace aibox::kernels {
namespace {

TEST(TypeInfoTest, ListsTheSupportedTypesInIdOrder) {
  const auto& types = supportedTypes();
  ASSERT_EQ(types.size(), 7u);
  std::uint32_t previous = 0;
  for (const auto& info : types) {
    auto id = static_cast<std::uint32_t>(info.type);
    EXPECT_TRUE(&info == types.data() || id > previous) << info.name;
    previous = id;
    auto looked = typeInfo(id);
    ASSERT_TRUE(looked.has_value());
    EXPECT_EQ(looked->name, info.name);
  }
  EXPECT_EQ(supportedTypeNames(), "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K");
}

TEST(TypeInfoTest, BlockSizesFollowGgml) {
  struct Expected {
    std::uint32_t id;
    std::string_view name;
    std::uint32_t elements;
    std::uint32_t bytes;
  };
  for (auto expected :
       {Expected{0, "F32", 1, 4}, Expected{1, "F16", 1, 2}, Expected{2, "Q4_0", 32, 18},
        Expected{8, "Q8_0", 32, 34}, Expected{12, "Q4_K", 256, 144}, Expected{14, "Q6_K", 256, 210},
        Expected{30, "BF16", 1, 2}}) {
    auto info = typeInfo(expected.id);
    ASSERT_TRUE(info.has_value()) << expected.name;
    EXPECT_EQ(info->name, expected.name);
    EXPECT_EQ(info->blockElements, expected.elements);
    EXPECT_EQ(info->blockBytes, expected.bytes);
  }
}

TEST(TypeInfoTest, OtherIdsAreUnsupported) {
  for (std::uint32_t id : {3u, 6u, 7u, 10u, 11u, 13u, 15u, 16u, 29u, 31u, 1000u}) {
    EXPECT_FALSE(typeInfo(id).has_value()) << id;
  }
}

TEST(RowBytesTest, CountsWholeBlocks) {
  EXPECT_EQ(rowBytes(Type::F32, 3), 12u);
  EXPECT_EQ(rowBytes(Type::F16, 5), 10u);
  EXPECT_EQ(rowBytes(Type::BF16, 4096), 8192u);
  EXPECT_EQ(rowBytes(Type::Q8_0, 4096), 128u * 34u);
  EXPECT_EQ(rowBytes(Type::Q4_0, 64), 36u);
  EXPECT_EQ(rowBytes(Type::Q4_K, 4096), 16u * 144u);
  EXPECT_EQ(rowBytes(Type::Q6_K, 512), 420u);
  EXPECT_EQ(rowBytes(Type::Q6_K, 0), 0u);
}

TEST(RowBytesTest, RejectsPartialBlocksAndUnknownTypes) {
  EXPECT_THROW(rowBytes(Type::Q4_K, 4095), std::invalid_argument);
  EXPECT_THROW(rowBytes(Type::Q8_0, 16), std::invalid_argument);
  EXPECT_THROW(rowBytes(static_cast<Type>(3), 32), std::invalid_argument);
}

TEST(HalfTest, KnownValues) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(floatToHalf(0.5f), 0x3800);
  EXPECT_EQ(floatToHalf(0.0f), 0x0000);
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(halfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(halfToFloat(0xc000), -2.0f);
  EXPECT_EQ(halfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(halfToFloat(0x3555), 0.333251953125f);
}

TEST(HalfTest, RoundsToNearestEven) {
  EXPECT_EQ(floatToHalf(1.0f + 0x1p-11f), 0x3c00);             // tie, down to even
  EXPECT_EQ(floatToHalf(1.0f + 3 * 0x1p-11f), 0x3c02);         // tie, up to even
  EXPECT_EQ(floatToHalf(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);  // above the tie
  EXPECT_EQ(floatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);  // the tie above the largest half is infinity
}

TEST(HalfTest, InfinityAndNan) {
  float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(floatToHalf(inf), 0x7c00);
  EXPECT_EQ(floatToHalf(-inf), 0xfc00);
  EXPECT_EQ(floatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(halfToFloat(0x7c00), inf);
  EXPECT_EQ(halfToFloat(0xfc00), -inf);
  EXPECT_TRUE(std::isnan(halfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(halfToFloat(0x7c01)));
  std::uint16_t nan = floatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x3ff, 0);
  // A NaN whose payload sits only in bits a half drops is still a NaN, not infinity.
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(std::bit_cast<float>(0x7f800001u)))));
}

TEST(HalfTest, Subnormals) {
  EXPECT_EQ(halfToFloat(0x0001), 0x1p-24f);
  EXPECT_EQ(halfToFloat(0x03ff), 1023 * 0x1p-24f);
  EXPECT_EQ(halfToFloat(0x8001), -0x1p-24f);
  EXPECT_EQ(halfToFloat(0x0400), 0x1p-14f);
  EXPECT_EQ(floatToHalf(0x1p-24f), 0x0001);
  EXPECT_EQ(floatToHalf(-0x1p-24f), 0x8001);
  EXPECT_EQ(floatToHalf(0x1p-25f), 0x0000);            // tie, to even zero
  EXPECT_EQ(floatToHalf(3 * 0x1p-25f), 0x0002);        // tie, to even 2
  EXPECT_EQ(floatToHalf(0x1p-26f * 3), 0x0001);        // 0.75 ulp rounds up
  EXPECT_EQ(floatToHalf(1023.5f * 0x1p-24f), 0x0400);  // rounds up into the normals
  EXPECT_EQ(floatToHalf(1e-10f), 0x0000);
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (std::uint32_t bits = 0; bits <= 0xffff; ++bits) {
    auto h = static_cast<std::uint16_t>(bits);
    float f = halfToFloat(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(f)))) << bits;
    } else {
      ASSERT_EQ(floatToHalf(f), h) << bits;
    }
  }
}

TEST(Bf16Test, KnownValuesAndRounding) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(floatToBf16(-2.0f), 0xc000);
  EXPECT_EQ(bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(bf16ToFloat(0x4049), 3.140625f);
  EXPECT_EQ(floatToBf16(1.0f + 0x1p-8f), 0x3f80);                     // tie, down to even
  EXPECT_EQ(floatToBf16(1.0f + 3 * 0x1p-8f), 0x3f82);                 // tie, up to even
  EXPECT_EQ(floatToBf16(std::bit_cast<float>(0x7f7fffffu)), 0x7f80);  // rounds to infinity
  EXPECT_EQ(floatToBf16(0x1p-130f), 0x0008);  // subnormals keep their top bits
  EXPECT_EQ(bf16ToFloat(0x0001), 0x1p-133f);
}

TEST(Bf16Test, InfinityAndNan) {
  float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(floatToBf16(inf), 0x7f80);
  EXPECT_EQ(floatToBf16(-inf), 0xff80);
  EXPECT_EQ(bf16ToFloat(0xff80), -inf);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::bit_cast<float>(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::bit_cast<float>(0xffffffffu)))));
}

TEST(Bf16Test, EveryBf16RoundTrips) {
  for (std::uint32_t bits = 0; bits <= 0xffff; ++bits) {
    auto h = static_cast<std::uint16_t>(bits);
    float f = bf16ToFloat(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(f)))) << bits;
    } else {
      ASSERT_EQ(floatToBf16(f), h) << bits;
    }
  }
}

}  // namespace
}  // namespace aibox::kernels
