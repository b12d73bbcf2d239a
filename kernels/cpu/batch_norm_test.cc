// BatchNorm's row passes on every instruction set, against plain loops over the values: the
// same bits, on FP32 values and on codes (whose sums are exact).
#include "kernels/cpu/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muppet::kernels {
namespace {

struct Case {
  int64_t rows, channels;
};

std::vector<float> Normal(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

template <typename Code>
std::vector<Code> Codes(int64_t n, int bits, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int top = 1 << (bits - 1);
  std::uniform_int_distribution<int> code(-top, top - 1);
  std::vector<Code> x(n);
  for (Code& v : x) v = static_cast<Code>(code(rng));
  x[0] = static_cast<Code>(-top);  // The extremes, whose squares are largest.
  x[n - 1] = static_cast<Code>(top - 1);
  return x;
}

// An input of every kind: FP32 values, int8 codes and int16 codes, each with its values in FP32
// (codes times the factor) for the reference loops.
struct Input {
  ChannelRows rows;
  std::vector<float> values;
};

std::vector<Input> Inputs(const Case& c, const std::vector<float>& f32,
                          const std::vector<int8_t>& s8, const std::vector<int16_t>& s16) {
  std::vector<Input> inputs;
  inputs.push_back({{.rows = c.rows, .channels = c.channels, .f32 = f32.data()}, f32});
  const float f8 = std::ldexp(1.0f, -5), f16 = std::ldexp(1.0f, -13);
  std::vector<float> v8(s8.size()), v16(s16.size());
  for (size_t i = 0; i < s8.size(); ++i) v8[i] = static_cast<float>(s8[i]) * f8;
  for (size_t i = 0; i < s16.size(); ++i) v16[i] = static_cast<float>(s16[i]) * f16;
  inputs.push_back({{.rows = c.rows, .channels = c.channels, .s8 = s8.data(), .factor = f8}, v8});
  inputs.push_back(
      {{.rows = c.rows, .channels = c.channels, .s16 = s16.data(), .factor = f16}, v16});
  return inputs;
}

class BatchNormKernelsTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case c = GetParam();
    const int64_t n = c.rows * c.channels;
    f32_ = Normal(n, 1);
    s8_ = Codes<int8_t>(n, 8, 2);
    s16_ = Codes<int16_t>(n, 16, 3);
    dy_ = Normal(n, 4);
    relu_scale_ = Normal(c.channels, 5);
    relu_shift_ = Normal(c.channels, 10);
    mean_ = Normal(c.channels, 6);
    inv_std_ = Normal(c.channels, 7);
    scale_ = Normal(c.channels, 8);
    shift_ = Normal(c.channels, 9);
  }

  std::vector<float> f32_, dy_, relu_scale_, relu_shift_, mean_, inv_std_, scale_, shift_;
  std::vector<int8_t> s8_;
  std::vector<int16_t> s16_;
};

// Sums over two row ranges, as two threads would add them, against double sums of the values.
TEST_P(BatchNormKernelsTest, SumsMatchDoubleSumsOfTheValues) {
  const Case c = GetParam();
  const int64_t split = c.rows / 3;
  for (const Input& in : Inputs(c, f32_, s8_, s16_)) {
    std::vector<double> sum(c.channels), sum_sq(c.channels);
    for (int64_t j = 0; j < c.channels; ++j) {
      for (int64_t row = 0; row < c.rows; ++row) {
        const double v = in.values[row * c.channels + j];
        sum[j] += v;
        sum_sq[j] += v * v;
      }
    }
    for (Isa isa : SupportedIsas()) {
      std::vector<double> s(c.channels), q(c.channels);
      ChannelSums(in.rows, 0, split, s.data(), q.data(), isa);
      ChannelSums(in.rows, split, c.rows, s.data(), q.data(), isa);
      if (in.rows.f32 != nullptr) {
        // Doubles: the reference's order only within each range, so within rounding.
        for (int64_t j = 0; j < c.channels; ++j) {
          EXPECT_NEAR(s[j], sum[j], 1e-9 * c.rows) << IsaName(isa);
          EXPECT_NEAR(q[j], sum_sq[j], 1e-9 * c.rows) << IsaName(isa);
        }
      } else {
        EXPECT_EQ(s, sum) << IsaName(isa);  // Exact: codes on a power-of-two grid.
        EXPECT_EQ(q, sum_sq) << IsaName(isa);
      }
      // The code extremes, gathered over the same two ranges, against the values' own.
      std::vector<int32_t> lo(c.channels, INT32_MAX), hi(c.channels, INT32_MIN);
      std::vector<double> s2(c.channels), q2(c.channels);
      ChannelSums(in.rows, 0, split, s2.data(), q2.data(), {lo.data(), hi.data()}, isa);
      ChannelSums(in.rows, split, c.rows, s2.data(), q2.data(), {lo.data(), hi.data()}, isa);
      EXPECT_EQ(s2, s) << IsaName(isa);
      EXPECT_EQ(q2, q) << IsaName(isa);
      for (int64_t j = 0; j < c.channels; ++j) {
        if (in.rows.f32 != nullptr) {  // Left as they were.
          EXPECT_EQ(lo[j], INT32_MAX);
          EXPECT_EQ(hi[j], INT32_MIN);
          continue;
        }
        int32_t want_lo = INT32_MAX, want_hi = INT32_MIN;
        for (int64_t row = 0; row < c.rows; ++row) {
          const int32_t code = in.rows.s8 != nullptr ? in.rows.s8[row * c.channels + j]
                                                     : in.rows.s16[row * c.channels + j];
          want_lo = std::min(want_lo, code);
          want_hi = std::max(want_hi, code);
        }
        EXPECT_EQ(lo[j], want_lo) << IsaName(isa) << " channel " << j;
        EXPECT_EQ(hi[j], want_hi) << IsaName(isa) << " channel " << j;
      }
    }
  }
}

TEST_P(BatchNormKernelsTest, EveryIsaComputesTheSameBits) {
  const Case c = GetParam();
  const int64_t n = c.rows * c.channels;
  for (const Input& in : Inputs(c, f32_, s8_, s16_)) {
    for (bool relu : {false, true}) {
      const ChannelGrad grad{.dy = dy_.data(),
                             .mean = mean_.data(),
                             .inv_std = inv_std_.data(),
                             .relu_scale = relu ? relu_scale_.data() : nullptr,
                             .relu_shift = relu ? relu_shift_.data() : nullptr};
      // The plain loops, on the values.
      std::vector<float> y(n), dx(n);
      std::vector<double> sum(c.channels), sum_sq(c.channels), sum_g(c.channels),
          sum_gx(c.channels);
      for (int64_t row = 0; row < c.rows; ++row) {
        for (int64_t j = 0; j < c.channels; ++j) {
          const int64_t i = row * c.channels + j;
          const float v = in.values[i];
          y[i] = std::max(v * scale_[j] + shift_[j], relu ? 0.0f : -INFINITY);
          const float before_relu = v * relu_scale_[j] + relu_shift_[j];
          const float g = relu ? (before_relu > 0 ? dy_[i] : 0.0f) : dy_[i];
          const float xhat = (v - mean_[j]) * inv_std_[j];
          sum_g[j] += g;
          sum_gx[j] += static_cast<double>(g) * xhat;
          dx[i] = scale_[j] * (g - shift_[j] - xhat * mean_[j]);
          sum[j] += v;
          sum_sq[j] += static_cast<double>(v) * v;
        }
      }
      for (Isa isa : SupportedIsas()) {
        std::vector<float> y_isa(n), dx_isa(n);
        std::vector<double> s(c.channels), q(c.channels), sg(c.channels), sgx(c.channels);
        ChannelAffine(in.rows, 0, c.rows, scale_.data(), shift_.data(), relu ? 0.0f : -INFINITY,
                      y_isa.data(), {}, isa);
        ChannelSums(in.rows, 0, c.rows, s.data(), q.data(), isa);
        ChannelGradSums(in.rows, grad, 0, c.rows, sg.data(), sgx.data(), isa);
        // mean_g and mean_g_xhat: any per-channel vectors will do.
        ChannelInputGrad(in.rows, grad, 0, c.rows, scale_.data(), shift_.data(), mean_.data(),
                         dx_isa.data(), isa);
        EXPECT_EQ(y_isa, y) << IsaName(isa) << " relu " << relu;
        // A range of rows writes just those rows.
        const int64_t split = c.rows / 3;
        std::vector<float> part((c.rows - split) * c.channels);
        ChannelAffine(in.rows, split, c.rows, scale_.data(), shift_.data(), relu ? 0.0f : -INFINITY,
                      part.data(), {}, isa);
        EXPECT_EQ(part, std::vector<float>(y.begin() + split * c.channels, y.end()))
            << IsaName(isa);
        // With a residual added (dy as the other branch), then the residual's ReLU or none.
        for (float added_floor : {0.0f, -INFINITY}) {
          std::vector<float> added(n), added_isa(n);
          for (int64_t i = 0; i < n; ++i) added[i] = std::max(y[i] + dy_[i], added_floor);
          ChannelAffine(in.rows, 0, c.rows, scale_.data(), shift_.data(), relu ? 0.0f : -INFINITY,
                        added_isa.data(), {.values = dy_.data(), .floor = added_floor}, isa);
          EXPECT_EQ(added_isa, added) << IsaName(isa) << " relu " << relu;
        }
        EXPECT_EQ(s, sum) << IsaName(isa);
        EXPECT_EQ(q, sum_sq) << IsaName(isa);
        EXPECT_EQ(sg, sum_g) << IsaName(isa) << " relu " << relu;
        EXPECT_EQ(sgx, sum_gx) << IsaName(isa) << " relu " << relu;
        EXPECT_EQ(dx_isa, dx) << IsaName(isa) << " relu " << relu;
      }
    }
  }
}

// Channel counts below, at and around the 16-lane blocks, a tail after whole blocks, and more
// rows than the AVX-512 code sums hold in int32 lanes before widening them (2^15).
INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormKernelsTest,
                         ::testing::Values(Case{37, 3}, Case{50, 16}, Case{29, 40}, Case{8, 64},
                                           Case{40000, 16}),
                         [](const auto& info) {
                           return absl::StrCat("r", info.param.rows, "c", info.param.channels);
                         });

}  // namespace
}  // namespace muppet::kernels
