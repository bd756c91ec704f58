#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/kernels/kernels.hpp"

namespace aibox::kernels {
namespace {

// A weight matrix quantised to `type`, and the floats it dequantises to.
struct Weights {
  Type type;
  std::size_t rows;
  std::size_t cols;
  std::vector<std::uint8_t> bytes;
  std::vector<float> exact;
};

Weights randomWeights(Type type, std::size_t rows, std::size_t cols, unsigned seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(rows * cols);
  for (auto& v : values) {
    v = normal(random);
  }
  Weights w{type, rows, cols, std::vector<std::uint8_t>(rows * rowBytes(type, cols)),
            std::vector<float>(rows * cols)};
  std::size_t bytesPerRow = rowBytes(type, cols);
  for (std::size_t r = 0; r < rows; ++r) {
    quantizeRow(type, values.data() + r * cols, w.bytes.data() + r * bytesPerRow, cols);
    dequantizeRow(type, w.bytes.data() + r * bytesPerRow, w.exact.data() + r * cols, cols);
  }
  return w;
}

// Activations with a spread of magnitudes, like a model's hidden state.
std::vector<float> randomActivations(std::size_t tokens, std::size_t cols, unsigned seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(tokens * cols);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = normal(random) * (i % 97 == 0 ? 20.0f : 1.0f);
  }
  return x;
}

bool quantisesActivations(Type type) {
  return type != Type::F32 && type != Type::F16 && type != Type::BF16;
}

// Compares matmul with the double-precision product of the dequantised weights. Where the
// activations are quantised to 8 bits (per block of at most 256 values, steps of at most
// amax / 127), each term is off by w times a rounding error that is roughly uniform within
// half a step: the sum stays within six standard deviations of that. Float summation adds a
// little more.
void expectMatchesReference(const Weights& w, const std::vector<float>& x, std::size_t tokens,
                            const std::vector<float>& y) {
  for (std::size_t t = 0; t < tokens; ++t) {
    const float* xt = x.data() + t * w.cols;
    std::vector<float> blockMax((w.cols + 255) / 256, 0.0f);
    for (std::size_t k = 0; k < w.cols; ++k) {
      blockMax[k / 256] = std::max(blockMax[k / 256], std::fabs(xt[k]));
    }
    for (std::size_t r = 0; r < w.rows; ++r) {
      const float* wr = w.exact.data() + r * w.cols;
      double expected = 0.0;
      double magnitude = 0.0;
      double variance = 0.0;
      for (std::size_t k = 0; k < w.cols; ++k) {
        expected += static_cast<double>(wr[k]) * xt[k];
        magnitude += std::fabs(static_cast<double>(wr[k]) * xt[k]);
        double step = wr[k] * blockMax[k / 256] / 127.0;
        variance += step * step / 12.0;
      }
      double tolerance = (quantisesActivations(w.type) ? 6.0 * std::sqrt(variance) : 0.0) +
                         1e-5 * magnitude + 1e-5;
      ASSERT_NEAR(y[t * w.rows + r], expected, tolerance) << "token " << t << " row " << r;
    }
  }
}

std::vector<Isa> availableIsas() {
  std::vector<Isa> isas = {Isa::Portable};
  if (detectedIsa() == Isa::Avx2) {
    isas.push_back(Isa::Avx2);
  }
  return isas;
}

class MatmulTest : public ::testing::Test {
 protected:
  void TearDown() override { setIsa(detectedIsa()); }
};

// Float types take any width (the AVX2 loops have tails); block types whole blocks.
std::size_t testCols(Type type) {
  auto info = typeInfo(static_cast<std::uint32_t>(type));
  return info->blockElements == 1 ? 203 : 512;
}

TEST_F(MatmulTest, EveryTypeMatchesTheDequantisedProduct) {
  for (Isa isa : availableIsas()) {
    ASSERT_EQ(setIsa(isa), isa);
    for (unsigned threads : {1u, 3u}) {
      ThreadPool pool(threads);
      for (const auto& info : supportedTypes()) {
        std::size_t cols = testCols(info.type);
        auto w = randomWeights(info.type, 13, cols, 1);
        for (std::size_t tokens : {1u, 7u}) {
          SCOPED_TRACE(std::string(isaName(isa)) + " " + std::string(info.name) + " threads " +
                       std::to_string(threads) + " tokens " + std::to_string(tokens));
          auto x = randomActivations(tokens, cols, 2);
          std::vector<float> y(tokens * w.rows, -1.0f);
          matmul(pool, info.type, w.bytes.data(), w.rows, cols, x.data(), tokens, y.data());
          expectMatchesReference(w, x, tokens, y);
        }
      }
    }
  }
}

// Portable and AVX2 quantise activations alike and sum integers exactly: only the order of the
// float additions differs.
TEST_F(MatmulTest, IsasAgree) {
  if (detectedIsa() != Isa::Avx2) {
    GTEST_SKIP() << "this CPU has no AVX2";
  }
  ThreadPool pool(2);
  for (const auto& info : supportedTypes()) {
    std::size_t cols = testCols(info.type);
    auto w = randomWeights(info.type, 9, cols, 3);
    auto x = randomActivations(5, cols, 4);
    std::vector<float> portable(5 * w.rows);
    std::vector<float> avx2(5 * w.rows);
    setIsa(Isa::Portable);
    matmul(pool, info.type, w.bytes.data(), w.rows, cols, x.data(), 5, portable.data());
    setIsa(Isa::Avx2);
    matmul(pool, info.type, w.bytes.data(), w.rows, cols, x.data(), 5, avx2.data());
    for (std::size_t i = 0; i < portable.size(); ++i) {
      EXPECT_NEAR(avx2[i], portable[i], 1e-4f * (1.0f + std::fabs(portable[i])))
          << info.name << " output " << i;
    }
  }
}

// Enough rows and tokens for several row chunks, each passed over by several token groups,
// with the activations quantised on all threads.
TEST_F(MatmulTest, ManyTokensAndRowChunks) {
  for (Isa isa : availableIsas()) {
    setIsa(isa);
    ThreadPool pool(3);
    for (Type type : {Type::Q8_0, Type::Q4_K, Type::Q6_K}) {
      SCOPED_TRACE(std::string(isaName(isa)) + " type " +
                   std::to_string(static_cast<std::uint32_t>(type)));
      auto w = randomWeights(type, 150, 512, 5);
      auto x = randomActivations(10, 512, 6);
      std::vector<float> y(10 * w.rows);
      matmul(pool, type, w.bytes.data(), w.rows, 512, x.data(), 10, y.data());
      expectMatchesReference(w, x, 10, y);
    }
  }
}

TEST_F(MatmulTest, FewerRowsThanThreads) {
  ThreadPool pool(3);
  auto w = randomWeights(Type::Q4_0, 2, 64, 7);
  auto x = randomActivations(3, 64, 8);
  std::vector<float> y(6, -1.0f);
  matmul(pool, Type::Q4_0, w.bytes.data(), 2, 64, x.data(), 3, y.data());
  expectMatchesReference(w, x, 3, y);
}

TEST_F(MatmulTest, ZeroActivationsGiveZero) {
  for (Isa isa : availableIsas()) {
    setIsa(isa);
    ThreadPool pool(1);
    for (const auto& info : supportedTypes()) {
      std::size_t cols = testCols(info.type);
      auto w = randomWeights(info.type, 4, cols, 9);
      std::vector<float> x(cols, 0.0f);
      std::vector<float> y(4, -1.0f);
      matmul(pool, info.type, w.bytes.data(), 4, cols, x.data(), 1, y.data());
      EXPECT_EQ(y, std::vector<float>(4, 0.0f)) << info.name << " " << isaName(isa);
    }
  }
}

TEST_F(MatmulTest, RejectsPartialBlocksAndUnknownTypes) {
  ThreadPool pool(1);
  std::vector<std::uint8_t> w(4096);
  std::vector<float> x(256);
  std::vector<float> y(4);
  EXPECT_THROW(matmul(pool, Type::Q4_K, w.data(), 1, 128, x.data(), 1, y.data()),
               std::invalid_argument);
  EXPECT_THROW(matmul(pool, static_cast<Type>(3), w.data(), 1, 32, x.data(), 1, y.data()),
               std::invalid_argument);
}

TEST(IsaTest, SetIsaKeepsPortableWithoutAvx2) {
  EXPECT_EQ(setIsa(Isa::Portable), Isa::Portable);
  EXPECT_EQ(activeIsa(), Isa::Portable);
  EXPECT_EQ(setIsa(Isa::Avx2), detectedIsa());
  EXPECT_EQ(activeIsa(), detectedIsa());
  EXPECT_EQ(isaName(Isa::Portable), "portable");
  EXPECT_EQ(isaName(Isa::Avx2), "avx2");
}

}  // namespace
}  // namespace aibox::kernels
