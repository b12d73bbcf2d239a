#include "worker/nn/containers.h"

#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/batch_norm.h"
#include "worker/nn/conv2d.h"
#include "worker/nn/elementwise.h"
#include "worker/nn/gradient_check.h"

namespace muppet {
namespace {

using testing::ExpectGradientsMatch;
using testing::RandomNormal;

std::unique_ptr<Conv2d> RandomConv(const std::string& name, int64_t in, int64_t out, int64_t kernel,
                                   uint64_t seed) {
  auto conv = std::make_unique<Conv2d>(
      name, Conv2dOptions{
                .in_channels = in, .out_channels = out, .kernel = kernel, .padding = kernel / 2});
  conv->weight().value = RandomNormal(conv->weight().value.shape(), seed, 0.3f);
  conv->bias()->value = RandomNormal(conv->bias()->value.shape(), seed + 1);
  return conv;
}

TEST(ResidualTest, AddsMainAndIdentity) {
  auto main = RandomConv("main", 3, 3, 3, 1);
  Conv2d* main_raw = main.get();
  Residual block(std::move(main), nullptr);
  const Tensor x = RandomNormal({2, 3, 4, 4}, 2);
  const Tensor& y = block.Forward(x, Mode::kTrain);
  const Tensor expected = main_raw->Forward(x, Mode::kTrain).Clone();
  for (int64_t i = 0; i < y.size(); ++i) EXPECT_FLOAT_EQ(y[i], expected[i] + x[i]);
}

TEST(ResidualTest, GradientsMatchFiniteDifferencesWithProjection) {
  Residual block(RandomConv("main", 2, 4, 3, 3), RandomConv("shortcut", 2, 4, 1, 5));
  ExpectGradientsMatch(block, RandomNormal({2, 2, 4, 4}, 6));
}

TEST(ResidualTest, FusedReluMatchesAddThenRelu) {
  Residual fused(RandomConv("main", 2, 2, 3, 31), nullptr, /*relu=*/true);
  Residual plain(RandomConv("main", 2, 2, 3, 31), nullptr);
  const Tensor x = RandomNormal({2, 2, 4, 4}, 32);
  const Tensor y = fused.Forward(x, Mode::kTrain).Clone();
  const Tensor z = plain.Forward(x, Mode::kTrain).Clone();
  for (int64_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], std::max(z[i], 0.0f));
  const Tensor g = RandomNormal(x.shape(), 33);
  Tensor masked = g.Clone();
  for (int64_t i = 0; i < g.size(); ++i) masked[i] = z[i] > 0 ? g[i] : 0.0f;
  const Tensor dx = fused.Backward(g).Clone();
  const Tensor& expected = plain.Backward(masked);
  for (int64_t i = 0; i < x.size(); ++i) EXPECT_FLOAT_EQ(dx[i], expected[i]);
}

TEST(ConcatTest, ConcatenatesChannelsInBranchOrder) {
  std::vector<std::unique_ptr<Layer>> branches;
  branches.push_back(RandomConv("a", 2, 3, 1, 7));
  branches.push_back(RandomConv("b", 2, 5, 3, 9));
  Conv2d* a = static_cast<Conv2d*>(branches[0].get());
  Conv2d* b = static_cast<Conv2d*>(branches[1].get());
  Concat concat(std::move(branches));
  const Tensor x = RandomNormal({2, 2, 3, 3}, 11);
  const Tensor y = concat.Forward(x, Mode::kTrain).Clone();
  ASSERT_EQ(y.shape(), (Shape{2, 8, 3, 3}));
  const Tensor ya = a->Forward(x, Mode::kTrain).Clone();
  const Tensor yb = b->Forward(x, Mode::kTrain).Clone();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t w = 0; w < 3; ++w) {
        for (int64_t c = 0; c < 3; ++c)
          EXPECT_EQ(y[y.Offset(n, c, h, w)], ya[ya.Offset(n, c, h, w)]);
        for (int64_t c = 0; c < 5; ++c)
          EXPECT_EQ(y[y.Offset(n, 3 + c, h, w)], yb[yb.Offset(n, c, h, w)]);
      }
}

TEST(ConcatTest, GradientsMatchFiniteDifferences) {
  std::vector<std::unique_ptr<Layer>> branches;
  branches.push_back(RandomConv("a", 3, 2, 1, 13));
  branches.push_back(RandomConv("b", 3, 4, 3, 15));
  Concat concat(std::move(branches));
  ExpectGradientsMatch(concat, RandomNormal({2, 3, 4, 4}, 17));
}

TEST(SequentialTest, ChainsLayersAndCollectsParametersInOrder) {
  Sequential seq;
  seq.Add(RandomConv("conv1", 2, 3, 3, 19));
  seq.Add(std::make_unique<BatchNorm2d>("bn1", 3));
  seq.Add(RandomConv("conv2", 3, 2, 3, 21));
  std::vector<Parameter*> params;
  seq.CollectParameters(params);
  std::vector<std::string> names;
  for (Parameter* p : params) names.push_back(p->name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias",
                                             "conv2.weight", "conv2.bias"}));
  EXPECT_EQ(seq.OutputShape({4, 2, 5, 5}), (Shape{4, 2, 5, 5}));
  ExpectGradientsMatch(seq, RandomNormal({2, 2, 4, 4}, 23));
}

std::vector<float> Values(const Tensor& t) { return {t.span().begin(), t.span().end()}; }

// Everything a train or eval step of conv -> BatchNorm leaves behind.
struct ConvBnStep {
  std::vector<float> output, grad_input, conv_grad, bn_grads, running;
  bool operator==(const ConvBnStep&) const = default;
};

// One training step (or an evaluation, which has no backward pass) of conv then bn.
ConvBnStep RunConvBn(Layer& conv, BatchNorm2d& bn, Parameter& conv_weight, const Tensor& x,
                     const Tensor& dy, Mode mode) {
  ConvBnStep step;
  step.output = Values(bn.Forward(conv.Forward(x, mode), mode));
  if (mode == Mode::kTrain) {
    step.grad_input = Values(conv.Backward(bn.Backward(dy)));
    step.conv_grad = Values(conv_weight.grad);
    step.bn_grads = Values(bn.gamma().grad);
    for (float g : bn.beta().grad.span()) step.bn_grads.push_back(g);
  }
  step.running = Values(bn.running_mean());
  for (float v : bn.running_var().span()) step.running.push_back(v);
  return step;
}

// A Sequential hands a fixed-point convolution's output to the BatchNorm after it as codes
// (layer.h): the same bits as the rounded FP32 output, at every level, in training and
// evaluation, and where the exponent is too extreme for codes (tiny weights and bias) the FP32 output.
TEST(SequentialTest, ConvolutionCodesReachBatchNormBitForBit) {
  for (bool relu : {false, true}) {
    for (float weight_scale : {0.3f, 1e-38f}) {
      Sequential linked;
      Conv2d* conv_a = linked.Add(RandomConv("conv", 5, 16, 3, 31));
      BatchNorm2d* bn_a = linked.Add(std::make_unique<BatchNorm2d>("bn", 16, relu));
      auto conv_b = RandomConv("conv", 5, 16, 3, 31);
      BatchNorm2d bn_b("bn", 16, relu);
      conv_a->weight().value = RandomNormal(conv_a->weight().value.shape(), 33, weight_scale);
      conv_a->bias()->value = RandomNormal({16}, 34, weight_scale);
      conv_b->weight().value = conv_a->weight().value.Clone();
      conv_b->bias()->value = conv_a->bias()->value.Clone();
      for (BatchNorm2d* bn : {bn_a, &bn_b}) {
        bn->gamma().value = RandomNormal({16}, 35);
        bn->beta().value = RandomNormal({16}, 36);
      }
      NumericPrecision precision_a{.seed = 9}, precision_b{.seed = 9};
      int id_a = 0, id_b = 0;
      linked.AttachPrecision(&precision_a, id_a);
      conv_b->AttachPrecision(&precision_b, id_b);
      bn_b.AttachPrecision(&precision_b, id_b);
      const Tensor x = RandomNormal({3, 5, 9, 7}, 37);
      const Tensor dy = RandomNormal({3, 16, 9, 7}, 38);
      for (int bits : {8, 12, 16, kFp32Bits}) {
        for (Mode mode : {Mode::kTrain, Mode::kEval}) {
          precision_a.bits = precision_b.bits = bits;
          ++precision_a.step;
          ++precision_b.step;
          const ConvBnStep a = RunConvBn(*conv_a, *bn_a, conv_a->weight(), x, dy, mode);
          EXPECT_EQ(conv_a->output_codes() != nullptr, bits < kFp32Bits && weight_scale > 1e-6f)
              << bits;
          const ConvBnStep b = RunConvBn(*conv_b, bn_b, conv_b->weight(), x, dy, mode);
          EXPECT_EQ(conv_b->output_codes(), nullptr);
          EXPECT_TRUE(a == b) << "bits " << bits << " relu " << relu << " weights " << weight_scale
                              << " mode " << static_cast<int>(mode);
          ASSERT_TRUE(precision_a.error.ok()) << precision_a.error;
          EXPECT_EQ(precision_a.saturations, precision_b.saturations);
        }
      }
    }
  }
}

}  // namespace
}  // namespace muppet
