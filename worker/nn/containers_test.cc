#include "worker/nn/containers.h"

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

}  // namespace
}  // namespace muppet
