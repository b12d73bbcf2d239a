#include "worker/nn/pooling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/random.h"
#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace muppet {
namespace {

using testing::ExpectGradientsMatch;
using testing::RandomNormal;

// Distinct values 0.05 apart in random order, so that no finite-difference step of 0.01 can
// change which element of a window is the maximum.
Tensor DistinctValues(const Shape& shape, uint64_t seed) {
  Tensor t(shape);
  std::vector<int64_t> order(t.size());
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed);
  for (int64_t i = t.size() - 1; i > 0; --i) std::swap(order[i], order[rng.Below(i + 1)]);
  for (int64_t i = 0; i < t.size(); ++i) t[i] = 0.05f * (order[i] - t.size() / 2);
  return t;
}

// Max or average (padding counted as zeros) over each window, in double.
std::vector<double> ReferencePool(const Tensor& x, Pool2d::Kind kind, const PoolOptions& o,
                                  const Shape& out) {
  Tensor layout(out);
  std::vector<double> y(layout.size());
  for (int64_t n = 0; n < out[0]; ++n)
    for (int64_t c = 0; c < out[1]; ++c)
      for (int64_t oy = 0; oy < out[2]; ++oy)
        for (int64_t ox = 0; ox < out[3]; ++ox) {
          double max = -INFINITY, sum = 0;
          int64_t counted = 0;  // Window cells inside input + padding.
          for (int64_t ky = 0; ky < o.kernel; ++ky)
            for (int64_t kx = 0; kx < o.kernel; ++kx) {
              const int64_t iy = oy * o.stride - o.padding + ky;
              const int64_t ix = ox * o.stride - o.padding + kx;
              if (iy < x.h() + o.padding && ix < x.w() + o.padding) ++counted;
              if (iy < 0 || ix < 0 || iy >= x.h() || ix >= x.w()) continue;
              max = std::max<double>(max, x[x.Offset(n, c, iy, ix)]);
              sum += x[x.Offset(n, c, iy, ix)];
            }
          y[layout.Offset(n, c, oy, ox)] = kind == Pool2d::Kind::kMax ? max : sum / counted;
        }
  return y;
}

struct PoolCase {
  Pool2d::Kind kind;
  PoolOptions options;
  Shape input;
  Shape expected_output;
};

class Pool2dTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(Pool2dTest, ForwardMatchesReference) {
  const PoolCase& p = GetParam();
  Pool2d pool(p.kind, p.options);
  const Tensor x = DistinctValues(p.input, 1);
  const Tensor& y = pool.Forward(x, Mode::kTrain);
  ASSERT_EQ(y.shape(), p.expected_output);
  const std::vector<double> expected = ReferencePool(x, p.kind, p.options, y.shape());
  for (int64_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], expected[i], 1e-5) << "at " << i;
}

TEST_P(Pool2dTest, GradientsMatchFiniteDifferences) {
  const PoolCase& p = GetParam();
  Pool2d pool(p.kind, p.options);
  ExpectGradientsMatch(pool, DistinctValues(p.input, 2));
}

INSTANTIATE_TEST_SUITE_P(
    Windows, Pool2dTest,
    ::testing::Values(
        PoolCase{Pool2d::Kind::kMax, {.kernel = 2, .stride = 2}, {2, 3, 6, 6}, {2, 3, 3, 3}},
        PoolCase{Pool2d::Kind::kMax,
                 {.kernel = 3, .stride = 2, .padding = 1},
                 {1, 2, 7, 7},
                 {1, 2, 4, 4}},
        PoolCase{Pool2d::Kind::kMax,
                 {.kernel = 3, .stride = 2, .ceil_mode = true},
                 {1, 2, 8, 8},
                 {1, 2, 4, 4}},
        PoolCase{Pool2d::Kind::kAverage, {.kernel = 2, .stride = 2}, {2, 3, 5, 5}, {2, 3, 2, 2}},
        PoolCase{Pool2d::Kind::kAverage,
                 {.kernel = 3, .stride = 1, .padding = 1},
                 {1, 4, 4, 4},
                 {1, 4, 4, 4}}));

TEST(GlobalAvgPoolTest, AveragesEachChannel) {
  GlobalAvgPool pool;
  const Tensor x = RandomNormal({2, 3, 4, 5}, 3);
  const Tensor& y = pool.Forward(x, Mode::kTrain);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 1, 1}));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c) {
      double sum = 0;
      for (int64_t yy = 0; yy < 4; ++yy)
        for (int64_t xx = 0; xx < 5; ++xx) sum += x[x.Offset(n, c, yy, xx)];
      EXPECT_NEAR(y[n * 3 + c], sum / 20, 1e-6);
    }
}

TEST(GlobalAvgPoolTest, GradientsMatchFiniteDifferences) {
  GlobalAvgPool pool;
  ExpectGradientsMatch(pool, RandomNormal({2, 3, 3, 4}, 4));
}

}  // namespace
}  // namespace muppet
