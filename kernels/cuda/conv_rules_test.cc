// The GPU convolution's lowerings (conv_rules.h) on the host: each pass's padded GEMM, built from
// ConvGemmOf, Im2ColSource and Col2ImSource as the device builds it, equals the pass by its
// definition on random codes, strided, padded and odd shapes included.
#include "kernels/cuda/conv_rules.h"

#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/conv_terms.h"

namespace muppet::cuda {
namespace {

using ::testing::HasSubstr;

// The three passes by their definitions, in int64: y (M x O), dx (N x H x W x C), dw (O x K).
struct Direct {
  std::vector<int64_t> y, dx, dw;
};

Direct DirectPasses(const ConvGeometry& g, const std::vector<int8_t>& x,
                    const std::vector<int8_t>& w, const std::vector<int8_t>& dy) {
  Direct d{std::vector<int64_t>(dy.size()), std::vector<int64_t>(x.size()),
           std::vector<int64_t>(w.size())};
  ForEachConvTerm(g, [&](int64_t yi, int64_t xi, int64_t wi) {
    d.y[yi] += int64_t{x[xi]} * w[wi];
    d.dx[xi] += int64_t{dy[yi]} * w[wi];
    d.dw[wi] += int64_t{dy[yi]} * x[xi];
  });
  return d;
}

// The padded operands the device builds.
std::vector<int8_t> Im2Col(const ConvGeometry& g, const ConvGemm& s, const std::vector<int8_t>& x) {
  std::vector<int8_t> cols(s.m_pad * s.k_pad);
  for (int64_t r = 0; r < s.m_pad; ++r) {
    for (int64_t q = 0; q < s.k_pad; ++q) {
      const int64_t at = Im2ColSource(g, r, q);
      cols[r * s.k_pad + q] = at < 0 ? 0 : x[at];
    }
  }
  return cols;
}

std::vector<int8_t> Pad(const std::vector<int8_t>& in, int64_t rows, int64_t cols, int64_t out_rows,
                        int64_t out_cols) {
  std::vector<int8_t> out(out_rows * out_cols, 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[r * out_cols + c] = in[r * cols + c];
  }
  return out;
}

// C (m x n) = A (m x k) B (n x k)^T in int64, the TN GEMM the tensor cores run.
std::vector<int64_t> Gemm(const std::vector<int8_t>& a, const std::vector<int8_t>& b, int64_t m,
                          int64_t n, int64_t k) {
  std::vector<int64_t> c(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t p = 0; p < k; ++p) c[i * n + j] += int64_t{a[i * k + p]} * b[j * k + p];
    }
  }
  return c;
}

std::vector<int8_t> Transpose(const std::vector<int8_t>& in, int64_t rows, int64_t cols) {
  std::vector<int8_t> out(in.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
  }
  return out;
}

// The true corner (rows x cols) of a padded matrix whose rows are `ld` long.
std::vector<int64_t> Corner(const std::vector<int64_t>& in, int64_t rows, int64_t cols,
                            int64_t ld) {
  std::vector<int64_t> out;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out.push_back(in[r * ld + c]);
  }
  return out;
}

std::vector<int8_t> RandomCodes(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(-128, 127);
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = static_cast<int8_t>(code(rng));
  return v;
}

TEST(ConvGemmTest, PadsEveryDimensionToSixteen) {
  // resnet20's stem on one 28x28 image: M = 784, O = 16, K = 9 -> 16.
  const ConvGemm s = ConvGemmOf(
      {.n = 1, .h = 28, .w = 28, .c = 1, .o = 16, .kernel = 3, .stride = 1, .padding = 1});
  EXPECT_EQ(s.m, 784);
  EXPECT_EQ(s.m_pad, 784);
  EXPECT_EQ(s.k, 9);
  EXPECT_EQ(s.k_pad, 16);
  EXPECT_EQ(s.o_pad, 16);
  const ConvGemm odd =
      ConvGemmOf({.n = 1, .h = 5, .w = 5, .c = 3, .o = 10, .kernel = 3, .stride = 2, .padding = 0});
  EXPECT_EQ(odd.m, 4);
  EXPECT_EQ(odd.m_pad, 16);
  EXPECT_EQ(odd.o_pad, 16);
  EXPECT_EQ(odd.k_pad, 32);
}

class LoweringTest : public ::testing::TestWithParam<ConvGeometry> {
 protected:
  void SetUp() override {
    std::mt19937 rng(11);
    x_ = RandomCodes(g_.n * g_.h * g_.w * g_.c, rng);
    w_ = RandomCodes(g_.o * g_.kernel * g_.kernel * g_.c, rng);
    dy_ = RandomCodes(g_.n * g_.out_h() * g_.out_w() * g_.o, rng);
    direct_ = DirectPasses(g_, x_, w_, dy_);
  }

  const ConvGeometry g_ = GetParam();
  const ConvGemm s_ = ConvGemmOf(g_);
  std::vector<int8_t> x_, w_, dy_;
  Direct direct_;
};

TEST_P(LoweringTest, ForwardIsIm2ColTimesTheWeights) {
  const std::vector<int64_t> y = Gemm(Im2Col(g_, s_, x_), Pad(w_, s_.o, s_.k, s_.o_pad, s_.k_pad),
                                      s_.m_pad, s_.o_pad, s_.k_pad);
  EXPECT_EQ(Corner(y, s_.m, s_.o, s_.o_pad), direct_.y);
}

TEST_P(LoweringTest, BackwardDataFoldsTheColumnGradientsBack) {
  const std::vector<int64_t> dcols = Gemm(
      Pad(dy_, s_.m, s_.o, s_.m_pad, s_.o_pad),
      Pad(Transpose(w_, s_.o, s_.k), s_.k, s_.o, s_.k_pad, s_.o_pad), s_.m_pad, s_.k_pad, s_.o_pad);
  std::vector<int64_t> dx(x_.size());
  for (int64_t e = 0; e < static_cast<int64_t>(dx.size()); ++e) {
    for (int64_t t = 0; t < g_.kernel * g_.kernel; ++t) {
      const int64_t at = Col2ImSource(g_, s_.k_pad, e, t);
      if (at >= 0) dx[e] += dcols[at];
    }
  }
  EXPECT_EQ(dx, direct_.dx);
}

TEST_P(LoweringTest, BackwardWeightsIsTheTransposedGradientTimesIm2Col) {
  const std::vector<int8_t> dy_t = Pad(Transpose(dy_, s_.m, s_.o), s_.o, s_.m, s_.o_pad, s_.m_pad);
  const std::vector<int8_t> cols_t = Transpose(Im2Col(g_, s_, x_), s_.m_pad, s_.k_pad);
  const std::vector<int64_t> dw = Gemm(dy_t, cols_t, s_.o_pad, s_.k_pad, s_.m_pad);
  EXPECT_EQ(Corner(dw, s_.o, s_.k, s_.k_pad), direct_.dw);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LoweringTest,
    ::testing::Values(
        // The stem: K padded from 9.
        ConvGeometry{
            .n = 2, .h = 7, .w = 7, .c = 1, .o = 16, .kernel = 3, .stride = 1, .padding = 1},
        // A stage's first, strided.
        ConvGeometry{
            .n = 1, .h = 8, .w = 8, .c = 16, .o = 32, .kernel = 3, .stride = 2, .padding = 1},
        // A projection; M and O padded.
        ConvGeometry{
            .n = 3, .h = 5, .w = 6, .c = 3, .o = 5, .kernel = 1, .stride = 2, .padding = 0},
        // A stride that leaves input pixels no output reads.
        ConvGeometry{
            .n = 1, .h = 9, .w = 9, .c = 4, .o = 7, .kernel = 2, .stride = 3, .padding = 1},
        ConvGeometry{
            .n = 1, .h = 9, .w = 9, .c = 4, .o = 7, .kernel = 5, .stride = 3, .padding = 2}));

TEST(CheckConvGeometryTest, NamesTheFieldOutOfRange) {
  const ConvGeometry ok{
      .n = 1, .h = 4, .w = 4, .c = 1, .o = 1, .kernel = 3, .stride = 1, .padding = 1};
  EXPECT_TRUE(CheckConvGeometry(ok).ok());
  ConvGeometry g = ok;
  g.c = 0;
  EXPECT_THAT(std::string(CheckConvGeometry(g).message()), HasSubstr("c: must be >= 1, got 0"));
  g = ok;
  g.padding = 3;
  EXPECT_THAT(std::string(CheckConvGeometry(g).message()), HasSubstr("padding:"));
  g = ok;
  g.kernel = 7;
  g.padding = 0;
  EXPECT_THAT(std::string(CheckConvGeometry(g).message()), HasSubstr("kernel: 7 exceeds"));
}

}  // namespace
}  // namespace muppet::cuda
