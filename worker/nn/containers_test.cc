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

// Everything a train or eval step of a chain of layers leaves behind.
struct ChainStep {
  std::vector<float> output, grad_input, grads, buffers;
  bool operator==(const ChainStep&) const = default;
};

// One training step (or an evaluation, which has no backward pass) of `layers` in order.
ChainStep RunChain(const std::vector<Layer*>& layers, const Tensor& x, const Tensor& dy,
                   Mode mode) {
  ChainStep step;
  const Tensor* t = &x;
  for (Layer* layer : layers) t = &layer->Forward(*t, mode);
  step.output = Values(*t);
  if (mode == Mode::kTrain) {
    const Tensor* g = &dy;
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) g = &(*it)->Backward(*g);
    step.grad_input = Values(*g);
  }
  for (Layer* layer : layers) {
    std::vector<Parameter*> params;
    layer->CollectParameters(params);
    for (Parameter* p : params) {
      for (float v : p->grad.span()) step.grads.push_back(v);
    }
    std::vector<std::pair<std::string, Tensor*>> buffers;
    layer->CollectBuffers(buffers);
    for (auto& [name, b] : buffers) {
      for (float v : b->span()) step.buffers.push_back(v);
    }
  }
  return step;
}

// conv -> BatchNorm -> conv, built the same way twice.
struct ConvBnConv {
  ConvBnConv(bool relu, float weight_scale) {
    conv1 = RandomConv("conv1", 5, 16, 3, 31);
    conv1->weight().value = RandomNormal(conv1->weight().value.shape(), 33, weight_scale);
    conv1->bias()->value = RandomNormal({16}, 34, weight_scale);
    bn = std::make_unique<BatchNorm2d>("bn", 16, relu);
    bn->gamma().value = RandomNormal({16}, 35);
    bn->beta().value = RandomNormal({16}, 36);
    conv2 = RandomConv("conv2", 16, 4, 3, 39);
  }
  std::vector<Layer*> layers() { return {conv1.get(), bn.get(), conv2.get()}; }
  std::unique_ptr<Conv2d> conv1;
  std::unique_ptr<BatchNorm2d> bn;
  std::unique_ptr<Conv2d> conv2;
};

// Within a Sequential, a fixed-point convolution hands its output to the BatchNorm after it as
// codes, and that BatchNorm leaves its output for the next convolution to quantise without
// writing it (layer.h): the same bits as through FP32 tensors, at every level, in training and
// evaluation, and where the exponent is too extreme for codes (tiny weights and bias) through
// the FP32 tensors as before.
TEST(SequentialTest, CodesBetweenConvolutionsAndBatchNormChangeNoBit) {
  // Each route on its own: under auto, the two chains could time their way to different ones.
  for (FixedPointRoute route : {FixedPointRoute::kInteger, FixedPointRoute::kGrid}) {
    for (bool relu : {false, true}) {
      for (float weight_scale : {0.3f, 1e-38f}) {
        ConvBnConv linked_layers(relu, weight_scale), plain(relu, weight_scale);
        Sequential linked;
        Conv2d* conv1 = linked.Add(std::move(linked_layers.conv1));
        BatchNorm2d* bn = linked.Add(std::move(linked_layers.bn));
        Conv2d* conv2 = linked.Add(std::move(linked_layers.conv2));
        NumericPrecision precision_a{.seed = 9, .route = route},
            precision_b{.seed = 9, .route = route};
        int id_a = 0, id_b = 0;
        linked.AttachPrecision(&precision_a, id_a);
        for (Layer* layer : plain.layers()) layer->AttachPrecision(&precision_b, id_b);
        const Tensor x = RandomNormal({3, 5, 9, 7}, 37);
        const Tensor dy = RandomNormal({3, 4, 9, 7}, 38);
        for (int bits : {8, 12, 16, kFp32Bits}) {
          for (Mode mode : {Mode::kTrain, Mode::kEval}) {
            precision_a.bits = precision_b.bits = bits;
            ++precision_a.step;
            ++precision_b.step;
            const ChainStep a = RunChain({conv1, bn, conv2}, x, dy, mode);
            const bool coded = bits < kFp32Bits && weight_scale > 1e-6f;
            EXPECT_EQ(conv1->output_codes() != nullptr, coded) << bits;
            // Deferred at every fixed-point level (its input FP32 where the codes fell back);
            // at FP32 the convolution after it asks for the values.
            EXPECT_EQ(bn->deferred_output() != nullptr, bits < kFp32Bits) << bits;
            const ChainStep b = RunChain(plain.layers(), x, dy, mode);
            EXPECT_EQ(plain.conv1->output_codes(), nullptr);
            EXPECT_EQ(plain.bn->deferred_output(), nullptr);
            EXPECT_TRUE(a == b) << "bits " << bits << " relu " << relu << " weights "
                                << weight_scale << " mode " << static_cast<int>(mode) << " route "
                                << static_cast<int>(route);
            ASSERT_TRUE(precision_a.error.ok()) << precision_a.error;
            EXPECT_EQ(precision_a.saturations, precision_b.saturations);
          }
        }
      }
    }
  }
}

// A layer that hands its input on: after a BatchNorm, it keeps the Residual from fusing that
// BatchNorm's output into the add; first in the main path, it keeps the first convolution from
// adding the shortcut's gradient to its input gradient.
class PassThrough : public Layer {
 public:
  const Tensor& Forward(const Tensor& input, Mode) override { return input; }
  const Tensor& Backward(const Tensor& grad_output) override { return grad_output; }
  Shape OutputShape(const Shape& input) const override { return input; }
};

// A ResNet block whose last BatchNorm's output is computed in the residual add, and whose input
// gradient is summed by the first convolution (layer.h): the same bits as the block with that
// output written first and the gradients added afterwards, with an identity and a projection
// shortcut, at every level and FP32, on both fixed-point routes, in training and evaluation.
TEST(ResidualTest, FusionsChangeNoBit) {
  for (FixedPointRoute route : {FixedPointRoute::kInteger, FixedPointRoute::kGrid}) {
    for (bool projection : {false, true}) {
      std::unique_ptr<Residual> block[2];
      std::vector<Layer*> body[2];
      for (int fused = 0; fused < 2; ++fused) {
        auto main = std::make_unique<Sequential>();
        if (!fused) main->Add(std::make_unique<PassThrough>());
        main->Add(RandomConv("conv1", 16, 16, 3, 41));
        main->Add(std::make_unique<BatchNorm2d>("bn1", 16, /*relu=*/true));
        main->Add(RandomConv("conv2", 16, 16, 3, 43));
        BatchNorm2d* bn2 = main->Add(std::make_unique<BatchNorm2d>("bn2", 16));
        bn2->gamma().value = RandomNormal({16}, 45);
        bn2->beta().value = RandomNormal({16}, 46);
        if (!fused) main->Add(std::make_unique<PassThrough>());
        body[fused] = {main.get(), bn2};
        std::unique_ptr<Sequential> shortcut;
        if (projection) {
          shortcut = std::make_unique<Sequential>();
          shortcut->Add(RandomConv("proj", 16, 16, 1, 47));
          shortcut->Add(std::make_unique<BatchNorm2d>("proj.bn", 16));
        }
        block[fused] = std::make_unique<Residual>(std::move(main), std::move(shortcut), true);
      }
      NumericPrecision precision[2] = {{.seed = 5, .route = route}, {.seed = 5, .route = route}};
      for (int fused = 0; fused < 2; ++fused) {
        int id = 0;
        block[fused]->AttachPrecision(&precision[fused], id);
      }
      const Tensor x = RandomNormal({2, 16, 8, 6}, 48);
      const Tensor dy = RandomNormal({2, 16, 8, 6}, 49);
      for (int bits : {8, 12, 16, kFp32Bits}) {
        for (Mode mode : {Mode::kTrain, Mode::kEval}) {
          ChainStep step[2];
          for (int fused = 0; fused < 2; ++fused) {
            precision[fused].bits = bits;
            ++precision[fused].step;
            step[fused] = RunChain({block[fused].get()}, x, dy, mode);
          }
          EXPECT_NE(body[1][1]->deferred_output(), nullptr);
          EXPECT_EQ(body[0][1]->deferred_output(), nullptr);
          EXPECT_TRUE(step[0] == step[1])
              << "bits " << bits << " projection " << projection << " mode "
              << static_cast<int>(mode) << " route " << static_cast<int>(route);
          EXPECT_EQ(precision[0].saturations, precision[1].saturations);
        }
      }
      // Main's first layer, the convolution, takes the addend; a PassThrough never does.
      const Tensor addend = RandomNormal({2, 16, 8, 6}, 50);
      EXPECT_TRUE(body[1][0]->AddToNextInputGrad(addend));
      EXPECT_FALSE(body[0][0]->AddToNextInputGrad(addend));
    }
  }
}

}  // namespace
}  // namespace muppet
