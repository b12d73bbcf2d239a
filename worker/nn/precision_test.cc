// The layers at fixed-point precisions: outputs and gradients land on the fixed-point grid of
// the word length, stay close to the FP32 results, and FP32 is exactly FP32 again afterwards.
#include "worker/nn/precision.h"

#include <cmath>
#include <functional>
#include <memory>

#include "gtest/gtest.h"
#include "worker/nn/conv2d.h"
#include "worker/nn/gradient_check.h"
#include "worker/nn/linear.h"
#include "worker/nn/pooling.h"

namespace muppet {
namespace {

using testing::RandomNormal;

// True if every value is code * 2^-s for one integer exponent s and codes within the signed
// range of `bits` bits.
bool OnGrid(std::span<const float> x, int bits) {
  for (int s = -40; s <= 60; ++s) {
    bool all = true;
    for (float v : x) {
      const double code = std::ldexp(static_cast<double>(v), s);
      if (code != std::floor(code) || code < -std::ldexp(1.0, bits - 1) ||
          code > std::ldexp(1.0, bits - 1) - 1) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

double MaxAbs(std::span<const float> x) {
  double m = 0;
  for (float v : x) m = std::max(m, std::abs(static_cast<double>(v)));
  return m;
}

// Largest difference between a and b, relative to b's largest magnitude.
double RelativeError(std::span<const float> a, std::span<const float> b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double{a[i]} - b[i]));
  return worst / MaxAbs(b);
}

struct Pass {
  std::vector<float> output, grad_input, grad_weight;
};

template <typename L>
Pass TrainStep(L& layer, const Tensor& x, const Tensor& dy, Parameter& weight) {
  Pass p;
  const Tensor& y = layer.Forward(x, Mode::kTrain);
  p.output.assign(y.span().begin(), y.span().end());
  const Tensor& dx = layer.Backward(dy);
  p.grad_input.assign(dx.span().begin(), dx.span().end());
  p.grad_weight.assign(weight.grad.span().begin(), weight.grad.span().end());
  return p;
}

TEST(FixedPointLayersTest, ConvolutionRoundsOntoTheGridAndStaysCloseToFp32) {
  NumericPrecision precision{.seed = 7};
  Conv2d conv("conv", {.in_channels = 5, .out_channels = 6, .kernel = 3, .padding = 1});
  int next_id = 0;
  conv.AttachPrecision(&precision, next_id);
  EXPECT_EQ(next_id, 1);
  conv.weight().value = RandomNormal(conv.weight().value.shape(), 1, 0.3f);
  conv.bias()->value = RandomNormal(conv.bias()->value.shape(), 2, 0.1f);
  const Tensor x = RandomNormal({2, 5, 7, 6}, 3);
  const Tensor dy = RandomNormal({2, 6, 7, 6}, 4);
  const Pass fp32 = TrainStep(conv, x, dy, conv.weight());
  for (int bits : {8, 12, 16}) {
    precision.bits = bits;
    precision.step = bits;
    const Pass fixed = TrainStep(conv, x, dy, conv.weight());
    ASSERT_TRUE(precision.error.ok()) << precision.error;
    EXPECT_TRUE(OnGrid(fixed.output, bits)) << bits;
    EXPECT_TRUE(OnGrid(fixed.grad_weight, bits)) << bits;
    EXPECT_TRUE(OnGrid(conv.bias()->grad.span(), bits)) << bits;
    // Each operand carries a relative rounding error of about 2^-(bits-1) of its largest value.
    const double tolerance = 40 * std::ldexp(1.0, -(bits - 1));
    EXPECT_LT(RelativeError(fixed.output, fp32.output), tolerance) << bits;
    EXPECT_LT(RelativeError(fixed.grad_input, fp32.grad_input), tolerance) << bits;
    EXPECT_LT(RelativeError(fixed.grad_weight, fp32.grad_weight), tolerance) << bits;
    EXPECT_NE(fixed.output, fp32.output);
  }
  precision.bits = kFp32Bits;
  const Pass again = TrainStep(conv, x, dy, conv.weight());
  EXPECT_EQ(again.output, fp32.output);  // FP32 is FP32 again, bit for bit.
  EXPECT_EQ(again.grad_weight, fp32.grad_weight);
}

TEST(FixedPointLayersTest, LinearRoundsOntoTheGridAndStaysCloseToFp32) {
  NumericPrecision precision{.seed = 3};
  Linear linear("fc", 20, 7);
  int next_id = 4;
  linear.AttachPrecision(&precision, next_id);
  linear.weight().value = RandomNormal(linear.weight().value.shape(), 5, 0.2f);
  const Tensor x = RandomNormal({9, 20}, 6);
  const Tensor dy = RandomNormal({9, 7}, 7);
  const Pass fp32 = TrainStep(linear, x, dy, linear.weight());
  precision.bits = 8;
  const Pass fixed = TrainStep(linear, x, dy, linear.weight());
  ASSERT_TRUE(precision.error.ok());
  EXPECT_TRUE(OnGrid(fixed.output, 8));
  EXPECT_TRUE(OnGrid(fixed.grad_weight, 8));
  EXPECT_LT(RelativeError(fixed.output, fp32.output), 0.2);
  EXPECT_LT(RelativeError(fixed.grad_input, fp32.grad_input), 0.2);
  EXPECT_LT(RelativeError(fixed.grad_weight, fp32.grad_weight), 0.2);
}

// The largest |a - b| in units of the grid step of b's largest magnitude at `bits` bits.
double GridSteps(std::span<const float> a, std::span<const float> b, int bits) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double{a[i]} - b[i]));
  const double step = std::ldexp(1.0, static_cast<int>(std::ceil(std::log2(MaxAbs(b)))) - bits + 1);
  return worst / step;
}

// The two routes quantise the same codes (same seed, layer id and step) and differ only in how
// the products accumulate: exactly in int32, or in FP32. So their outputs and weight gradients,
// rounded onto the grid afterwards, differ by at most one grid step, and the input gradients by
// FP32 rounding; auto logs one timed choice per pass.
template <typename L>
void ExpectRoutesAgree(const std::function<std::unique_ptr<L>()>& make, const Tensor& x,
                       const Tensor& dy) {
  for (int bits : {8, 12, 16}) {
    Pass pass[2];
    const FixedPointRoute routes[2] = {FixedPointRoute::kInteger, FixedPointRoute::kGrid};
    for (int r = 0; r < 2; ++r) {
      NumericPrecision precision{.bits = bits, .seed = 11, .step = 5, .route = routes[r]};
      std::unique_ptr<L> layer = make();
      int id = 0;
      layer->AttachPrecision(&precision, id);
      pass[r] = TrainStep(*layer, x, dy, layer->weight());
      ASSERT_TRUE(precision.error.ok()) << precision.error;
      ASSERT_EQ(precision.route_choices.size(), 3u);  // Forward, backward-weights, -data.
      for (const RouteChoice& c : precision.route_choices) {
        EXPECT_EQ(c.route, routes[r]);
        EXPECT_FALSE(c.measured);
        EXPECT_EQ(c.code_bits, bits <= 8 ? 8 : 16);
      }
    }
    EXPECT_LE(GridSteps(pass[1].output, pass[0].output, bits), 1.0) << bits;
    EXPECT_LE(GridSteps(pass[1].grad_weight, pass[0].grad_weight, bits), 1.0) << bits;
    EXPECT_LT(RelativeError(pass[1].grad_input, pass[0].grad_input), 1e-5) << bits;

    NumericPrecision timed{.bits = bits, .seed = 11, .step = 5};  // kAuto.
    std::unique_ptr<L> layer = make();
    int id = 0;
    layer->AttachPrecision(&timed, id);
    const Pass chosen = TrainStep(*layer, x, dy, layer->weight());
    ASSERT_EQ(timed.route_choices.size(), 3u);
    for (const RouteChoice& c : timed.route_choices) {
      EXPECT_TRUE(c.measured);
      EXPECT_GT(c.integer_seconds, 0);
      EXPECT_GT(c.grid_seconds, 0);
      EXPECT_EQ(c.route, c.grid_seconds < c.integer_seconds ? FixedPointRoute::kGrid
                                                            : FixedPointRoute::kInteger);
    }
    // Trials leave no trace: the chosen routes' result, and one pass's saturations.
    EXPECT_LE(GridSteps(chosen.output, pass[0].output, bits), 1.0) << bits;
    TrainStep(*layer, x, dy, layer->weight());
    EXPECT_EQ(timed.route_choices.size(), 3u);  // Chosen once per pass and shape.
  }
}

TEST(FixedPointLayersTest, ConvolutionRoutesAgree) {
  const Tensor w = RandomNormal({6, 5, 3, 3}, 1, 0.3f);
  ExpectRoutesAgree<Conv2d>(
      [&] {
        auto conv = std::make_unique<Conv2d>(
            "conv", Conv2dOptions{.in_channels = 5, .out_channels = 6, .kernel = 3, .padding = 1});
        conv->weight().value = w.Clone();
        return conv;
      },
      RandomNormal({2, 5, 7, 6}, 3), RandomNormal({2, 6, 7, 6}, 4));
}

TEST(FixedPointLayersTest, LinearRoutesAgree) {
  const Tensor w = RandomNormal({7, 20}, 5, 0.2f);
  ExpectRoutesAgree<Linear>(
      [&] {
        auto linear = std::make_unique<Linear>("fc", 20, 7);
        linear->weight().value = w.Clone();
        return linear;
      },
      RandomNormal({9, 20}, 6), RandomNormal({9, 7}, 7));
}

TEST(FixedPointLayersTest, AveragePoolsRoundOutputAndGradient) {
  NumericPrecision precision{.bits = 8};
  GlobalAvgPool global;
  Pool2d average(Pool2d::Kind::kAverage, {});
  Pool2d max(Pool2d::Kind::kMax, {});
  int next_id = 0;
  global.AttachPrecision(&precision, next_id);
  average.AttachPrecision(&precision, next_id);
  max.AttachPrecision(&precision, next_id);
  EXPECT_EQ(next_id, 2);  // Max pooling stays FP32 and takes no streams.
  const Tensor x = RandomNormal({2, 3, 4, 4}, 8);
  EXPECT_TRUE(OnGrid(global.Forward(x, Mode::kTrain).span(), 8));
  const Tensor dy = RandomNormal({2, 3, 1, 1}, 9);
  // dx = rounded dy / 16: on the grid of the rounded dy, shifted by four bits.
  EXPECT_TRUE(OnGrid(global.Backward(dy).span(), 8));
  EXPECT_TRUE(OnGrid(average.Forward(x, Mode::kTrain).span(), 8));
  EXPECT_FALSE(OnGrid(max.Forward(x, Mode::kTrain).span(), 8));
}

TEST(FixedPointLayersTest, NonFiniteValuesAreRecordedWithTheLayersName) {
  NumericPrecision precision{.bits = 8};
  Conv2d conv("stage2.conv1", {.in_channels = 1, .out_channels = 2, .kernel = 1});
  int next_id = 0;
  conv.AttachPrecision(&precision, next_id);
  Tensor x = RandomNormal({1, 1, 2, 2}, 1);
  x[3] = INFINITY;
  conv.Forward(x, Mode::kTrain);
  ASSERT_FALSE(precision.error.ok());
  EXPECT_NE(precision.error.message().find("stage2.conv1: input at step 0"), std::string::npos)
      << precision.error;
}

}  // namespace
}  // namespace muppet
