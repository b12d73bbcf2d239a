// The GPU convolution's lowering (conv_rules.h) on the host: the forward GEMM built from
// Im2ColSource and ConvGemmOf, padding included, equals a direct convolution on random codes.
#include "kernels/cuda/conv_rules.h"

#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet::cuda {
namespace {

using ::testing::HasSubstr;

// y (N x OH x OW x O) of a convolution, by its definition: exact int64 sums.
std::vector<int64_t> DirectConv(const ConvGeometry& g, const std::vector<int8_t>& x,
                                const std::vector<int8_t>& w) {
  std::vector<int64_t> y;
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oy = 0; oy < g.out_h(); ++oy) {
      for (int64_t ox = 0; ox < g.out_w(); ++ox) {
        for (int64_t o = 0; o < g.o; ++o) {
          int64_t sum = 0;
          for (int64_t ky = 0; ky < g.kernel; ++ky) {
            for (int64_t kx = 0; kx < g.kernel; ++kx) {
              const int64_t iy = oy * g.stride - g.padding + ky;
              const int64_t ix = ox * g.stride - g.padding + kx;
              if (iy < 0 || ix < 0 || iy >= g.h || ix >= g.w) continue;
              for (int64_t c = 0; c < g.c; ++c) {
                sum += int64_t{x[((n * g.h + iy) * g.w + ix) * g.c + c]} *
                       w[((o * g.kernel + ky) * g.kernel + kx) * g.c + c];
              }
            }
          }
          y.push_back(sum);
        }
      }
    }
  }
  return y;
}

// The same through the padded GEMM the device runs: X' and W padded with code 0, then the true
// M x O corner of X' W^T.
std::vector<int64_t> GemmConv(const ConvGeometry& g, const std::vector<int8_t>& x,
                              const std::vector<int8_t>& w) {
  const ConvGemm s = ConvGemmOf(g);
  std::vector<int8_t> cols(s.m_pad * s.k_pad), weights(s.n_pad * s.k_pad, 0);
  for (int64_t r = 0; r < s.m_pad; ++r) {
    for (int64_t q = 0; q < s.k_pad; ++q) {
      const int64_t at = Im2ColSource(g, r, q);
      cols[r * s.k_pad + q] = at < 0 ? 0 : x[at];
    }
  }
  for (int64_t o = 0; o < s.n; ++o) {
    for (int64_t q = 0; q < s.k; ++q) weights[o * s.k_pad + q] = w[o * s.k + q];
  }
  std::vector<int64_t> y;
  for (int64_t r = 0; r < s.m; ++r) {
    for (int64_t o = 0; o < s.n; ++o) {
      int64_t sum = 0;
      for (int64_t q = 0; q < s.k_pad; ++q) {
        sum += int64_t{cols[r * s.k_pad + q]} * weights[o * s.k_pad + q];
      }
      y.push_back(sum);
    }
  }
  return y;
}

std::vector<int8_t> RandomCodes(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(-128, 127);
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = static_cast<int8_t>(code(rng));
  return v;
}

TEST(ConvGemmTest, PadsToWhatTheTensorCoresTake) {
  // resnet20's stem on one 28x28 image: M = 784, O = 16, K = 9 -> 16.
  const ConvGemm s = ConvGemmOf(
      {.n = 1, .h = 28, .w = 28, .c = 1, .o = 16, .kernel = 3, .stride = 1, .padding = 1});
  EXPECT_EQ(s.m, 784);
  EXPECT_EQ(s.k, 9);
  EXPECT_EQ(s.k_pad, 16);
  EXPECT_EQ(s.n_pad, 16);
  const ConvGemm odd =
      ConvGemmOf({.n = 1, .h = 5, .w = 5, .c = 3, .o = 10, .kernel = 3, .stride = 2, .padding = 0});
  EXPECT_EQ(odd.m, 4);
  EXPECT_EQ(odd.m_pad, 4);
  EXPECT_EQ(odd.n_pad, 12);
  EXPECT_EQ(odd.k_pad, 32);
}

TEST(Im2ColSourceTest, TheLoweredGemmIsTheConvolution) {
  std::mt19937 rng(11);
  for (const ConvGeometry& g : {
           ConvGeometry{.n = 2,
          .h = 7,
          .w = 7,
          .c = 1,
          .o = 16,
          .kernel = 3,
          .stride = 1,
          .padding = 1},  // The stem: K padded from 9.
           ConvGeometry{.n = 1,
           .h = 8,
           .w = 8,
           .c = 16,
           .o = 32,
           .kernel = 3,
           .stride = 2,
           .padding = 1},  // A stage's first, strided.
           ConvGeometry{.n = 3,
           .h = 5,
           .w = 6,
           .c = 3,
           .o = 5,
           .kernel = 1,
           .stride = 2,
           .padding = 0},  // A projection; M and O padded.
           ConvGeometry{
               .n = 1, .h = 9, .w = 9, .c = 4, .o = 7, .kernel = 5, .stride = 3, .padding = 2},
       }) {
    const std::vector<int8_t> x = RandomCodes(g.n * g.h * g.w * g.c, rng);
    const std::vector<int8_t> w = RandomCodes(g.o * g.kernel * g.kernel * g.c, rng);
    EXPECT_EQ(GemmConv(g, x, w), DirectConv(g, x, w))
        << g.n << "x" << g.h << "x" << g.w << "x" << g.c << " -> " << g.o << ", kernel " << g.kernel
        << " stride " << g.stride << " padding " << g.padding;
  }
}

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
