#include "worker/nn/batch_norm.h"

#include <cmath>
#include <optional>

#include "gtest/gtest.h"
#include "kernels/cpu/quantize.h"
#include "worker/nn/gradient_check.h"

namespace muppet {
namespace {

using testing::ExpectGradientsMatch;
using testing::RandomNormal;

TEST(BatchNormTest, TrainingNormalisesWithBatchStatistics) {
  BatchNorm2d bn("bn", 3);
  bn.gamma().value = RandomNormal({3}, 1);
  bn.beta().value = RandomNormal({3}, 2);
  Tensor x = RandomNormal({4, 3, 5, 5}, 3, 2.0f);
  for (int64_t i = 0; i < x.size(); ++i) x[i] += 5.0f;  // A mean far from zero.
  const Tensor& y = bn.Forward(x, Mode::kTrain);
  for (int64_t ch = 0; ch < 3; ++ch) {
    // Mean and biased variance of channel ch, in double.
    double mean, var;
    const int64_t rows = x.size() / 3;
    double s = 0, q = 0;
    for (int64_t r = 0; r < rows; ++r) s += x[r * 3 + ch];
    mean = s / rows;
    for (int64_t r = 0; r < rows; ++r) q += (x[r * 3 + ch] - mean) * (x[r * 3 + ch] - mean);
    var = q / rows;
    for (int64_t r = 0; r < rows; ++r) {
      const double expected =
          (x[r * 3 + ch] - mean) / std::sqrt(var + 1e-5) * bn.gamma().value[ch] +
          bn.beta().value[ch];
      ASSERT_NEAR(y[r * 3 + ch], expected, 1e-4);
    }
    // Running statistics moved 10% of the way from (0, 1), with the unbiased variance.
    EXPECT_NEAR(bn.running_mean()[ch], 0.1 * mean, 1e-5);
    EXPECT_NEAR(bn.running_var()[ch], 0.9 + 0.1 * var * rows / (rows - 1), 1e-4);
  }
}

TEST(BatchNormTest, EvaluationUsesRunningStatistics) {
  BatchNorm2d bn("bn", 2);
  const Tensor warmup = RandomNormal({8, 2, 3, 3}, 4, 3.0f);
  for (int i = 0; i < 50; ++i) bn.Forward(warmup, Mode::kTrain);
  const Tensor x = RandomNormal({2, 2, 3, 3}, 5);
  const Tensor& y = bn.Forward(x, Mode::kEval);
  for (int64_t i = 0; i < x.size(); ++i) {
    const int64_t ch = i % 2;
    const double expected = (x[i] - bn.running_mean()[ch]) / std::sqrt(bn.running_var()[ch] + 1e-5);
    EXPECT_NEAR(y[i], expected, 1e-5);
  }
}

TEST(BatchNormTest, GradientsMatchFiniteDifferences) {
  BatchNorm2d bn("bn", 4);
  bn.gamma().value = RandomNormal({4}, 6);
  bn.beta().value = RandomNormal({4}, 7);
  ExpectGradientsMatch(bn, RandomNormal({3, 4, 3, 3}, 8));
}

// A producer that leaves no codes and takes gradient ranges, recording them.
class RangeTaker : public Layer {
 public:
  const Tensor& Forward(const Tensor& input, Mode) override { return input; }
  const Tensor& Backward(const Tensor& grad_output) override { return grad_output; }
  Shape OutputShape(const Shape& input) const override { return input; }
  bool LeaveOutputAsCodes() override { return true; }
  bool WantsGradOutputRange() const override { return wants; }
  void SetNextGradOutputRange(const kernels::Range& r) override { range = r; }

  bool wants = true;
  std::optional<kernels::Range> range;
};

// The range BatchNorm gathers while writing its input gradient, a block of rows at a time on
// every thread, is exactly MinMax's of that gradient, with and without the fused ReLU, on channel
// counts that do and do not fill a vector; nothing is passed to a producer that does not ask.
TEST(BatchNormTest, GathersItsInputGradientsRangeForTheProducer) {
  for (int64_t channels : {3, 16, 40}) {
    for (bool relu : {false, true}) {
      RangeTaker producer;
      BatchNorm2d bn("bn", channels, relu);
      bn.gamma().value = RandomNormal({channels}, 11);
      bn.beta().value = RandomNormal({channels}, 12);
      ASSERT_TRUE(bn.ReadInputCodesFrom(producer));
      const Tensor x = RandomNormal({8, channels, 17, 9}, 13);
      const Tensor dy = RandomNormal({8, channels, 17, 9}, 14);
      bn.Forward(producer.Forward(x, Mode::kTrain), Mode::kTrain);
      const Tensor& dx = bn.Backward(dy);
      const absl::StatusOr<kernels::Range> expected = kernels::MinMax(dx.span());
      ASSERT_TRUE(expected.ok());
      ASSERT_TRUE(producer.range.has_value()) << channels;
      EXPECT_EQ(producer.range->min, expected->min) << channels << " relu " << relu;
      EXPECT_EQ(producer.range->max, expected->max) << channels << " relu " << relu;

      producer.range.reset();
      producer.wants = false;
      bn.Forward(producer.Forward(x, Mode::kTrain), Mode::kTrain);
      bn.Backward(dy);
      EXPECT_FALSE(producer.range.has_value());
    }
  }
}

TEST(BatchNormTest, ExposesParametersAndBuffers) {
  BatchNorm2d bn("block.bn1", 4);
  std::vector<Parameter*> params;
  bn.CollectParameters(params);
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0]->name, "block.bn1.weight");
  EXPECT_EQ(params[1]->name, "block.bn1.bias");
  std::vector<std::pair<std::string, Tensor*>> buffers;
  bn.CollectBuffers(buffers);
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(buffers[0].first, "block.bn1.running_mean");
  EXPECT_EQ(buffers[1].first, "block.bn1.running_var");
}

}  // namespace
}  // namespace muppet

namespace muppet {
namespace {

// The fused layer equals BatchNorm followed by ReLU, whose gradients are each checked against
// finite differences above and in elementwise_test.
TEST(BatchNormReluTest, FusedReluMatchesSeparateLayers) {
  BatchNorm2d fused("bn", 3, /*relu=*/true), plain("bn", 3);
  for (BatchNorm2d* bn : {&fused, &plain}) {
    bn->gamma().value = testing::RandomNormal({3}, 9);
    bn->beta().value = testing::RandomNormal({3}, 10);
  }
  const Tensor x = testing::RandomNormal({2, 3, 4, 4}, 11);
  const Tensor& y = fused.Forward(x, Mode::kTrain);
  const Tensor& z = plain.Forward(x, Mode::kTrain);
  for (int64_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], std::max(z[i], 0.0f));
  const Tensor g = testing::RandomNormal(x.shape(), 12);
  Tensor masked = g.Clone();
  for (int64_t i = 0; i < g.size(); ++i) masked[i] = z[i] > 0 ? g[i] : 0.0f;
  const Tensor dx_fused = fused.Backward(g).Clone();
  const Tensor& dx_plain = plain.Backward(masked);
  for (int64_t i = 0; i < x.size(); ++i) EXPECT_NEAR(dx_fused[i], dx_plain[i], 1e-6);
}

}  // namespace
}  // namespace muppet
