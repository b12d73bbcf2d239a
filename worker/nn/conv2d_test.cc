#include "worker/nn/conv2d.h"

#include <cmath>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace muppet {
namespace {

using testing::ExpectGradientsMatch;
using testing::RandomNormal;

// Direct convolution in double over logical (N, C, H, W) indices.
std::vector<double> ReferenceConv(const Tensor& x, Conv2d& conv) {
  const Conv2dOptions& o = conv.options();
  const Shape out = conv.OutputShape(x.shape());
  const Tensor& w = conv.weight().value;
  std::vector<double> y(NumElements(out));
  Tensor layout(out);  // Only for Offset().
  for (int64_t n = 0; n < out[0]; ++n)
    for (int64_t oc = 0; oc < out[1]; ++oc)
      for (int64_t oy = 0; oy < out[2]; ++oy)
        for (int64_t ox = 0; ox < out[3]; ++ox) {
          double sum = conv.bias() ? conv.bias()->value[oc] : 0.0;
          for (int64_t ic = 0; ic < o.in_channels; ++ic)
            for (int64_t ky = 0; ky < o.kernel; ++ky)
              for (int64_t kx = 0; kx < o.kernel; ++kx) {
                const int64_t iy = oy * o.stride - o.padding + ky;
                const int64_t ix = ox * o.stride - o.padding + kx;
                if (iy < 0 || ix < 0 || iy >= x.h() || ix >= x.w()) continue;
                sum +=
                    static_cast<double>(x[x.Offset(n, ic, iy, ix)]) * w[w.Offset(oc, ic, ky, kx)];
              }
          y[layout.Offset(n, oc, oy, ox)] = sum;
        }
  return y;
}

void RandomiseParameters(Conv2d& conv, uint64_t seed) {
  conv.weight().value = RandomNormal(conv.weight().value.shape(), seed, 0.3f);
  if (conv.bias()) conv.bias()->value = RandomNormal(conv.bias()->value.shape(), seed + 1);
}

struct ConvCase {
  Conv2dOptions options;
  Shape input;
};

class Conv2dTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dTest, ForwardMatchesDoubleReference) {
  Conv2d conv("conv", GetParam().options);
  RandomiseParameters(conv, 11);
  const Tensor x = RandomNormal(GetParam().input, 12);
  const Tensor& y = conv.Forward(x, Mode::kTrain);
  ASSERT_EQ(y.shape(), conv.OutputShape(x.shape()));
  const std::vector<double> expected = ReferenceConv(x, conv);
  for (int64_t i = 0; i < y.size(); ++i) {
    ASSERT_NEAR(y[i], expected[i], 1e-4 * (1 + std::abs(expected[i]))) << "at " << i;
  }
}

TEST_P(Conv2dTest, GradientsMatchFiniteDifferences) {
  Conv2d conv("conv", GetParam().options);
  RandomiseParameters(conv, 21);
  ExpectGradientsMatch(conv, RandomNormal(GetParam().input, 22));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Conv2dTest,
    ::testing::Values(
        ConvCase{{.in_channels = 1, .out_channels = 6, .kernel = 5, .padding = 2}, {2, 1, 9, 9}},
        ConvCase{{.in_channels = 3, .out_channels = 5, .kernel = 3, .stride = 2, .padding = 1},
                 {3, 3, 7, 8}},
        ConvCase{{.in_channels = 16, .out_channels = 16, .kernel = 3, .padding = 1, .bias = false},
                 {2, 16, 6, 6}},
        ConvCase{{.in_channels = 8, .out_channels = 4, .kernel = 1, .stride = 2, .bias = false},
                 {2, 8, 5, 5}}));

TEST(Conv2dPlanTest, ServesSeveralBatchSizes) {
  Conv2d conv("conv", {.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = 1});
  RandomiseParameters(conv, 31);
  for (int64_t batch : {4, 1, 4}) {
    const Tensor x = RandomNormal({batch, 2, 5, 5}, 32 + batch);
    const Tensor& y = conv.Forward(x, Mode::kTrain);
    const std::vector<double> expected = ReferenceConv(x, conv);
    for (int64_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], expected[i], 1e-4) << batch;
  }
}

TEST(Conv2dPlanTest, SkipsInputGradientWhenNotRequired) {
  Conv2d conv("conv", {.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = 1});
  RandomiseParameters(conv, 41);
  conv.SetInputGradRequired(false);
  const Tensor x = RandomNormal({2, 2, 4, 4}, 42);
  conv.Forward(x, Mode::kTrain);
  const Tensor g = RandomNormal(conv.OutputShape(x.shape()), 43);
  EXPECT_EQ(conv.Backward(g).size(), 0);
  // The weight gradient is still computed: sum over outputs of g * x for the centre tap.
  double expected = 0;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t yy = 0; yy < 4; ++yy)
      for (int64_t xx = 0; xx < 4; ++xx)
        expected += static_cast<double>(g[g.Offset(n, 0, yy, xx)]) * x[x.Offset(n, 0, yy, xx)];
  const Tensor& dw = conv.weight().grad;
  EXPECT_NEAR(dw[dw.Offset(0, 0, 1, 1)], expected, 1e-4 * (1 + std::abs(expected)));
}

}  // namespace
}  // namespace muppet
