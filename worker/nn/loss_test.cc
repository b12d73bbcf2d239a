#include "worker/nn/loss.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace muppet {
namespace {

using testing::RandomNormal;

double ReferenceLoss(const Tensor& logits, const std::vector<int32_t>& labels) {
  const int64_t n = logits.dim(0), k = logits.dim(1);
  double total = 0;
  for (int64_t r = 0; r < n; ++r) {
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(logits[r * k + j]));
    total += std::log(sum) - logits[r * k + labels[r]];
  }
  return total / n;
}

TEST(SoftmaxCrossEntropyTest, LossAndAccuracyMatchReference) {
  const Tensor logits = RandomNormal({6, 4}, 1, 3.0f);
  const std::vector<int32_t> labels = {0, 3, 2, 1, 1, 0};
  SoftmaxCrossEntropy loss;
  const auto result = loss.Forward(logits, labels);
  EXPECT_NEAR(result.loss, ReferenceLoss(logits, labels), 1e-6);
  int64_t correct = 0;
  for (int64_t r = 0; r < 6; ++r) {
    int64_t best = 0;
    for (int64_t j = 1; j < 4; ++j) best = logits[r * 4 + j] > logits[r * 4 + best] ? j : best;
    correct += best == labels[r];
  }
  EXPECT_EQ(result.correct, correct);
}

TEST(SoftmaxCrossEntropyTest, StableForHugeLogits) {
  Tensor logits({1, 3});
  logits[0] = 1000.0f;
  logits[1] = -1000.0f;
  logits[2] = 0.0f;
  SoftmaxCrossEntropy loss;
  const std::vector<int32_t> labels = {1};
  EXPECT_NEAR(loss.Forward(logits, labels).loss, 2000.0, 1e-3);
}

TEST(SoftmaxCrossEntropyTest, GradientMatchesFiniteDifferences) {
  Tensor logits = RandomNormal({5, 7}, 2);
  const std::vector<int32_t> labels = {6, 0, 3, 3, 1};
  SoftmaxCrossEntropy loss;
  loss.Forward(logits, labels);
  const Tensor grad = loss.Backward().Clone();
  const double h = 1e-2;
  for (int64_t i = 0; i < logits.size(); ++i) {
    const float saved = logits[i];
    logits[i] = static_cast<float>(saved + h);
    const double plus = ReferenceLoss(logits, labels);
    logits[i] = static_cast<float>(saved - h);
    const double minus = ReferenceLoss(logits, labels);
    logits[i] = saved;
    EXPECT_NEAR(grad[i], (plus - minus) / (2 * h), 1e-4) << "at " << i;
  }
}

}  // namespace
}  // namespace muppet
