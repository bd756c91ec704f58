// The float vector helpers of attention, on both kernel sets, against plain loops.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "runtime/kernels/kernels.hpp"

namespace aibox::kernels {
namespace {

TEST(VectorHelpers, DotAndAddScaledMatchPlainLoopsOnEveryLengthAndIsa) {
  std::mt19937 random(5);
  std::normal_distribution<float> normal;
  for (auto isa : {Isa::Portable, detectedIsa()}) {
    setIsa(isa);
    for (std::size_t n : {0, 1, 7, 8, 15, 16, 17, 64, 129}) {
      std::vector<float> a(n), b(n), y(n), expected(n);
      for (std::size_t i = 0; i < n; ++i) {
        a[i] = normal(random);
        b[i] = normal(random);
        y[i] = expected[i] = normal(random);
      }
      double want = 0;
      for (std::size_t i = 0; i < n; ++i) {
        want += static_cast<double>(a[i]) * b[i];
        expected[i] += 0.5f * a[i];
      }
      EXPECT_NEAR(dot(a.data(), b.data(), n), want, 1e-4 * (1 + std::sqrt(static_cast<double>(n))))
          << isaName(isa) << " n=" << n;
      addScaled(y.data(), a.data(), 0.5f, n);
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_NEAR(y[i], expected[i], 1e-5) << isaName(isa) << " n=" << n << " i=" << i;
      }
    }
  }
  setIsa(detectedIsa());
}

}  // namespace
}  // namespace aibox::kernels
