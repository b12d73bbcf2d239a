#include "kernels/cpu/fixed_point_conv.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/fixed_point_test_util.h"

namespace muppet::kernels {
namespace {

using testing::DequantizedOperand;
using ::testing::HasSubstr;
using testing::RandomFloats;

// Calls f(n, oy, ox, o, ky, kx, c, x_index, y_index, w_index) for every term of the
// convolution, with channels-last indices.
template <typename F>
void ForEachTerm(const ConvGeometry& g, F f) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oy = 0; oy < g.out_h(); ++oy)
      for (int64_t ox = 0; ox < g.out_w(); ++ox)
        for (int64_t o = 0; o < g.o; ++o)
          for (int64_t ky = 0; ky < g.kernel; ++ky)
            for (int64_t kx = 0; kx < g.kernel; ++kx) {
              const int64_t iy = oy * g.stride - g.padding + ky,
                            ix = ox * g.stride - g.padding + kx;
              if (iy < 0 || ix < 0 || iy >= g.h || ix >= g.w) continue;
              for (int64_t c = 0; c < g.c; ++c) {
                f(((n * g.h + iy) * g.w + ix) * g.c + c,
                  ((n * g.out_h() + oy) * g.out_w() + ox) * g.o + o,
                  ((o * g.kernel + ky) * g.kernel + kx) * g.c + c);
              }
            }
}

class FixedPointConvTest : public ::testing::TestWithParam<std::tuple<int, ConvGeometry>> {
 protected:
  FixedPointOptions Options() const {
    return {.word_length = std::get<0>(GetParam()), .seed = 3, .step = 2};
  }
  const ConvGeometry& G() const { return std::get<1>(GetParam()); }
  int64_t XSize() const { return G().n * G().h * G().w * G().c; }
  int64_t YSize() const { return G().n * G().out_h() * G().out_w() * G().o; }
  int64_t WSize() const { return G().o * G().kernel * G().kernel * G().c; }
};

// Every output is one integer dot product, rounded once: exactly the FP64 result rounded.
TEST_P(FixedPointConvTest, ForwardIsTheConvolutionOfTheQuantisedOperands) {
  const auto x = RandomFloats(XSize(), 1), w = RandomFloats(WSize(), 2), b = RandomFloats(G().o, 3);
  std::vector<float> y(YSize());
  ASSERT_TRUE(ConvForward(Options(), G(), x, w, b, y).ok());
  const auto qx = DequantizedOperand(x, Options(), Operand::kInput),
             qw = DequantizedOperand(w, Options(), Operand::kWeights);
  std::vector<double> expected(YSize(), 0.0);
  ForEachTerm(G(), [&](int64_t xi, int64_t yi, int64_t wi) { expected[yi] += qx[xi] * qw[wi]; });
  for (int64_t i = 0; i < YSize(); ++i) {
    ASSERT_EQ(y[i], static_cast<float>(expected[i]) + b[i % G().o]) << i;
  }
}

// Backward passes add several rounded partial results: equal within FP32 rounding of the sum of
// the terms' magnitudes.
TEST_P(FixedPointConvTest, BackwardDataIsTheTransposedConvolution) {
  const auto dy = RandomFloats(YSize(), 4), w = RandomFloats(WSize(), 5);
  std::vector<float> dx(XSize());
  ASSERT_TRUE(ConvBackwardData(Options(), G(), dy, w, dx).ok());
  const auto qdy = DequantizedOperand(dy, Options(), Operand::kGradient),
             qw = DequantizedOperand(w, Options(), Operand::kWeights);
  std::vector<double> expected(XSize(), 0.0), magnitude(XSize(), 0.0);
  ForEachTerm(G(), [&](int64_t xi, int64_t yi, int64_t wi) {
    expected[xi] += qdy[yi] * qw[wi];
    magnitude[xi] += std::abs(qdy[yi] * qw[wi]);
  });
  for (int64_t i = 0; i < XSize(); ++i) {
    ASSERT_NEAR(dx[i], expected[i], 1e-6 * magnitude[i] + 1e-30) << i;
  }
}

TEST_P(FixedPointConvTest, BackwardWeightsIsTheCorrelation) {
  const auto dy = RandomFloats(YSize(), 6), x = RandomFloats(XSize(), 7);
  std::vector<float> dw(WSize()), db(G().o);
  ASSERT_TRUE(ConvBackwardWeights(Options(), G(), dy, x, dw, db).ok());
  const auto qdy = DequantizedOperand(dy, Options(), Operand::kGradient),
             qx = DequantizedOperand(x, Options(), Operand::kInput);
  std::vector<double> expected(WSize(), 0.0), magnitude(WSize(), 0.0), bias(G().o, 0.0);
  ForEachTerm(G(), [&](int64_t xi, int64_t yi, int64_t wi) {
    expected[wi] += qdy[yi] * qx[xi];
    magnitude[wi] += std::abs(qdy[yi] * qx[xi]);
  });
  for (int64_t i = 0; i < YSize(); ++i) bias[i % G().o] += qdy[i];
  for (int64_t i = 0; i < WSize(); ++i) {
    ASSERT_NEAR(dw[i], expected[i], 1e-6 * magnitude[i] + 1e-30) << i;
  }
  for (int64_t j = 0; j < G().o; ++j) EXPECT_FLOAT_EQ(db[j], static_cast<float>(bias[j]));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FixedPointConvTest,
    ::testing::Combine(
        ::testing::Values(8, 12, 16),
        ::testing::Values(
            ConvGeometry{.n = 2, .h = 5, .w = 6, .c = 3, .o = 4, .kernel = 3, .padding = 1},
            ConvGeometry{.n = 1, .h = 7, .w = 7, .c = 2, .o = 5, .kernel = 3, .stride = 2},
            ConvGeometry{.n = 3, .h = 4, .w = 4, .c = 5, .o = 3, .kernel = 1, .stride = 2},
            ConvGeometry{.n = 2, .h = 6, .w = 5, .c = 1, .o = 6, .kernel = 5, .padding = 2},
            // Enough pixels per channel for the blocked 9-16-bit routes (several blocks).
            ConvGeometry{.n = 2, .h = 24, .w = 23, .c = 2, .o = 3, .kernel = 3, .padding = 1})));

TEST(FixedPointConvErrorsTest, BadGeometryAndSizesAreNamed) {
  std::vector<float> x(2 * 4 * 4 * 3, 1.0f), w(5 * 3 * 3 * 3, 1.0f), y(2 * 4 * 4 * 5);
  ConvGeometry g{.n = 2, .h = 4, .w = 4, .c = 3, .o = 5, .kernel = 3, .padding = 1};
  EXPECT_TRUE(ConvForward({}, g, x, w, {}, y).ok());
  g.kernel = 9;
  EXPECT_THAT(ConvForward({}, g, x, w, {}, y).status().message(),
              HasSubstr("invalid convolution: input 2x4x4x3, 5 outputs, kernel 9"));
  g.kernel = 3;
  w.pop_back();
  EXPECT_THAT(ConvForward({}, g, x, w, {}, y).status().message(),
              HasSubstr("w has 134 (expected 135)"));
}

}  // namespace
}  // namespace muppet::kernels
