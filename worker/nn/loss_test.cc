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

// Data parallel: two ranks' halves of a batch, each normalised by the whole batch, sum to the
// whole batch's gradient.
TEST(SoftmaxCrossEntropyTest, HalvesNormalisedByTheGlobalBatchSumToTheWhole) {
  const Tensor logits = RandomNormal({4, 3}, 5);
  const std::vector<int32_t> labels = {2, 0, 1, 1};
  SoftmaxCrossEntropy whole, half;
  whole.Forward(logits, labels);
  const Tensor want = whole.Backward().Clone();
  for (int part = 0; part < 2; ++part) {
    Tensor rows({2, 3});
    for (int64_t i = 0; i < 6; ++i) rows[i] = logits[part * 6 + i];
    half.Forward(rows, std::span<const int32_t>(labels).subspan(2 * part, 2));
    const Tensor& got = half.Backward(4);
    for (int64_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(got[i], want[part * 6 + i]);
  }
}

}  // namespace
}  // namespace muppet
