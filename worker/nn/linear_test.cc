#include "worker/nn/linear.h"

#include <cmath>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace muppet {
namespace {

using testing::ExpectGradientsMatch;
using testing::RandomNormal;

TEST(LinearTest, ForwardMatchesDoubleReference) {
  Linear linear("fc", 7, 5);
  linear.weight().value = RandomNormal({5, 7}, 1);
  linear.bias().value = RandomNormal({5}, 2);
  const Tensor x = RandomNormal({3, 7}, 3);
  const Tensor& y = linear.Forward(x, Mode::kTrain);
  ASSERT_EQ(y.shape(), (Shape{3, 5}));
  for (int64_t n = 0; n < 3; ++n) {
    for (int64_t o = 0; o < 5; ++o) {
      double expected = linear.bias().value[o];
      for (int64_t i = 0; i < 7; ++i) {
        expected += static_cast<double>(x[n * 7 + i]) * linear.weight().value[o * 7 + i];
      }
      EXPECT_NEAR(y[n * 5 + o], expected, 1e-5 * (1 + std::abs(expected)));
    }
  }
}

TEST(LinearTest, GradientsMatchFiniteDifferences) {
  Linear linear("fc", 6, 4);
  linear.weight().value = RandomNormal({4, 6}, 4, 0.5f);
  linear.bias().value = RandomNormal({4}, 5);
  ExpectGradientsMatch(linear, RandomNormal({5, 6}, 6));
}

TEST(LinearTest, FlattensRank4InputInMemoryOrder) {
  Linear linear("fc", 2 * 3 * 3, 4);
  linear.weight().value = RandomNormal({4, 18}, 7, 0.5f);
  linear.bias().value = RandomNormal({4}, 8);
  const Tensor x = RandomNormal({2, 2, 3, 3}, 9);
  Tensor flat({2, 18});
  for (int64_t i = 0; i < x.size(); ++i) flat[i] = x[i];
  const Tensor expected = linear.Forward(flat, Mode::kTrain).Clone();
  const Tensor& y = linear.Forward(x, Mode::kTrain);
  for (int64_t i = 0; i < y.size(); ++i) EXPECT_FLOAT_EQ(y[i], expected[i]);
  ExpectGradientsMatch(linear, x);
}

}  // namespace
}  // namespace muppet
