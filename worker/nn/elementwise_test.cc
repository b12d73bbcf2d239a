#include "worker/nn/elementwise.h"

#include <cmath>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace muppet {
namespace {

using testing::ExpectGradientsMatch;
using testing::RandomNormal;

TEST(ReluTest, ForwardClampsNegatives) {
  Relu relu;
  const Tensor x = RandomNormal({2, 3, 4, 4}, 1);
  const Tensor& y = relu.Forward(x, Mode::kTrain);
  for (int64_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], std::max(x[i], 0.0f));
}

TEST(ReluTest, GradientsMatchFiniteDifferences) {
  Relu relu;
  Tensor x = RandomNormal({2, 3, 4, 4}, 2);
  // Keep every input at least 2 steps from the kink at 0.
  for (int64_t i = 0; i < x.size(); ++i) x[i] += x[i] >= 0 ? 0.05f : -0.05f;
  ExpectGradientsMatch(relu, x);
}

TEST(DropoutTest, DropsAboutPAndScalesTheRest) {
  Dropout dropout(0.3, 42);
  Tensor x({100000});
  x.Fill(1.0f);
  const Tensor& y = dropout.Forward(x, Mode::kTrain);
  int64_t dropped = 0;
  for (int64_t i = 0; i < y.size(); ++i) {
    if (y[i] == 0.0f) {
      ++dropped;
    } else {
      EXPECT_FLOAT_EQ(y[i], 1.0f / 0.7f);
    }
  }
  // Binomial(1e5, 0.3): standard deviation 145; allow 5 of them.
  EXPECT_NEAR(dropped, 30000, 5 * 145);
}

TEST(DropoutTest, BackwardUsesTheForwardMask) {
  Dropout dropout(0.5, 7);
  const Tensor x = RandomNormal({1000}, 3);
  const Tensor y = dropout.Forward(x, Mode::kTrain).Clone();
  const Tensor g = RandomNormal({1000}, 4);
  const Tensor& dx = dropout.Backward(g);
  for (int64_t i = 0; i < x.size(); ++i) {
    // y = x * m and dx = g * m for the same mask m (0 or 2).
    const float m = y[i] == 0.0f ? 0.0f : 2.0f;
    EXPECT_FLOAT_EQ(dx[i], g[i] * m);
  }
}

TEST(DropoutTest, MasksDifferAcrossStepsAndRepeatAcrossRuns) {
  Tensor x({256});
  x.Fill(1.0f);
  Dropout a(0.5, 9), b(0.5, 9);
  const Tensor a1 = a.Forward(x, Mode::kTrain).Clone();
  const Tensor a2 = a.Forward(x, Mode::kTrain).Clone();
  const Tensor b1 = b.Forward(x, Mode::kTrain).Clone();
  int same_step = 0, next_step = 0;
  for (int64_t i = 0; i < x.size(); ++i) {
    same_step += a1[i] == b1[i];
    next_step += a1[i] == a2[i];
  }
  EXPECT_EQ(same_step, 256);
  EXPECT_LT(next_step, 200);
}

TEST(DropoutTest, EvaluationIsIdentity) {
  Dropout dropout(0.5, 1);
  const Tensor x = RandomNormal({64}, 5);
  const Tensor& y = dropout.Forward(x, Mode::kEval);
  for (int64_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], x[i]);
}

}  // namespace
}  // namespace muppet
