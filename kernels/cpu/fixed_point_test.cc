#include "kernels/cpu/fixed_point.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/fixed_point_conv.h"
#include "kernels/cpu/fixed_point_linear.h"
#include "kernels/cpu/fixed_point_test_util.h"

namespace muppet::kernels {
namespace {

using ::testing::HasSubstr;
using testing::RandomFloats;

TEST(QuantizeTensorIntoTest, EqualsQuantizeTensorAndReusesItsBuffers) {
  Quantized q;
  for (int wl : {4, 8, 12, 16}) {
    const auto x = RandomFloats(5000 + wl, wl);
    ASSERT_TRUE(QuantizeTensorInto(x, wl, Rounding::kStochastic, 7, 3, q).ok());
    const Quantized expected = *QuantizeTensor(x, wl, Rounding::kStochastic, 7, 3);
    EXPECT_EQ(q.word_length, wl);
    EXPECT_EQ(q.exponent, expected.exponent);
    EXPECT_EQ(q.s8, expected.s8);
    EXPECT_EQ(q.s16, expected.s16);
    EXPECT_EQ(q.size(), static_cast<int64_t>(x.size()));
  }
  const int8_t* codes = q.s8.data();
  ASSERT_TRUE(QuantizeTensorInto(RandomFloats(1000, 1), 8, Rounding::kNearest, 0, 0, q).ok());
  EXPECT_EQ(q.s8.data(), codes);  // Smaller tensor: same storage.
  EXPECT_FALSE(QuantizeTensorInto(std::vector<float>{1, NAN}, 8, Rounding::kNearest, 0, 0, q).ok());
}

// Given the range its producer gathered, the quantiser gives exactly what it gives scanning the
// tensor itself; given none (a producer that saw a non-finite element), it scans and names it.
TEST(QuantizeTensorIntoTest, AKnownRangeGivesTheScannedResult) {
  for (int wl : {6, 8, 12, 16}) {
    const auto x = RandomFloats(300001, wl);  // Large enough to split across threads.
    RangeScan scan;
    scan.Add(x.data(), static_cast<int64_t>(x.size()));
    Quantized known, scanned;
    ASSERT_TRUE(QuantizeTensorInto(x, scan.range(), wl, Rounding::kStochastic, 7, 3, known).ok());
    ASSERT_TRUE(QuantizeTensorInto(x, wl, Rounding::kStochastic, 7, 3, scanned).ok());
    EXPECT_EQ(known.exponent, scanned.exponent) << wl;
    EXPECT_EQ(known.s8, scanned.s8) << wl;
    EXPECT_EQ(known.s16, scanned.s16) << wl;
    EXPECT_EQ(known.saturated, scanned.saturated) << wl;
  }
  Quantized q;
  const absl::Status bad = QuantizeTensorInto(std::vector<float>{1, 2, INFINITY}, std::nullopt, 8,
                                              Rounding::kNearest, 0, 0, q);
  EXPECT_THAT(bad.message(), HasSubstr("element 2 is inf"));
}

// A described BatchNorm output quantises to exactly what its written output does: exponent,
// codes, saturations, and the error naming a non-finite element. Inputs of every kind, channel
// counts that do and do not divide the rounding blocks, and enough rows for several threads.
TEST(QuantizeTensorIntoTest, ChannelAffineRowsEqualTheirWrittenValues) {
  for (int64_t channels : {3, 16, 40}) {
    for (int64_t rows : {7, 301, 6000}) {
      const int64_t n = rows * channels;
      const std::vector<float> values = RandomFloats(n, 1);
      std::vector<int8_t> s8(n);
      std::vector<int16_t> s16(n);
      for (int64_t i = 0; i < n; ++i) {
        s8[i] = static_cast<int8_t>(std::lround(values[i] * 40));
        s16[i] = static_cast<int16_t>(std::lround(values[i] * 9000));
      }
      const std::vector<float> scale = RandomFloats(channels, 2);
      const std::vector<float> shift = RandomFloats(channels, 3);
      const ChannelRows base{.rows = rows, .channels = channels};
      ChannelRows f32 = base, codes8 = base, codes16 = base;
      f32.f32 = values.data();
      codes8.s8 = s8.data();
      codes8.factor = 0.125f;
      codes16.s16 = s16.data();
      codes16.factor = std::ldexp(1.0f, -12);
      for (const ChannelRows& x : {f32, codes8, codes16}) {
        // The code extremes as BatchNorm's statistics pass gathers them (codes only).
        std::vector<int32_t> code_min(channels, INT32_MAX), code_max(channels, INT32_MIN);
        std::vector<double> sum(channels), sum_sq(channels);
        ChannelSums(x, 0, rows, sum.data(), sum_sq.data(), {code_min.data(), code_max.data()});
        for (float floor : {0.0f, -INFINITY}) {
          const ChannelAffineRows y{
              .x = x, .scale = scale.data(), .shift = shift.data(), .floor = floor};
          ChannelAffineRows with_extremes = y;
          with_extremes.code_min = code_min.data();
          with_extremes.code_max = code_max.data();
          std::vector<float> written(n);
          ChannelAffine(x, 0, rows, y.scale, y.shift, floor, written.data());
          for (int wl : {8, 12}) {
            Quantized expected;
            ASSERT_TRUE(
                QuantizeTensorInto(written, wl, Rounding::kStochastic, 5, 9, expected).ok());
            for (const ChannelAffineRows& described : {y, with_extremes}) {
              Quantized got;
              ASSERT_TRUE(
                  QuantizeTensorInto(described, wl, Rounding::kStochastic, 5, 9, got).ok());
              EXPECT_EQ(got.word_length, wl);
              EXPECT_EQ(got.exponent, expected.exponent);
              EXPECT_EQ(got.s8, expected.s8) << channels << " x " << rows;
              EXPECT_EQ(got.s16, expected.s16) << channels << " x " << rows;
              EXPECT_EQ(got.saturated, expected.saturated);
            }
          }
        }
      }
      // A NaN shift poisons its channel: the same error, naming the same first element.
      std::vector<float> bad_shift = shift;
      bad_shift[channels - 1] = NAN;
      const ChannelAffineRows y{
          .x = f32, .scale = scale.data(), .shift = bad_shift.data(), .floor = -INFINITY};
      std::vector<float> written(n);
      ChannelAffine(f32, 0, rows, y.scale, y.shift, y.floor, written.data());
      Quantized out;
      const absl::Status expected = QuantizeTensorInto(written, 8, Rounding::kNearest, 0, 0, out);
      const absl::Status got = QuantizeTensorInto(y, 8, Rounding::kNearest, 0, 0, out);
      EXPECT_FALSE(got.ok());
      EXPECT_EQ(got, expected);
    }
  }
}

// With the code extremes given, a tensor whose affine overflows, or whose shift is not finite,
// gets the error that its written values get, naming the same first element.
TEST(QuantizeTensorIntoTest, CodeExtremesKeepTheNonFiniteErrors) {
  const int64_t rows = 500, channels = 24, n = rows * channels;
  std::vector<int16_t> s16(n);
  for (int64_t i = 0; i < n; ++i) s16[i] = static_cast<int16_t>(i * 7919 % 20001 - 10000);
  const ChannelRows x{.rows = rows, .channels = channels, .s16 = s16.data(), .factor = 1.0f};
  std::vector<int32_t> code_min(channels, INT32_MAX), code_max(channels, INT32_MIN);
  std::vector<double> sum(channels), sum_sq(channels);
  ChannelSums(x, 0, rows, sum.data(), sum_sq.data(), {code_min.data(), code_max.data()});
  std::vector<float> scale(channels, 0.5f), shift(channels, 1.0f);
  for (int kind = 0; kind < 3; ++kind) {
    std::vector<float> sc = scale, sh = shift;
    if (kind == 0) sc[5] = 1e36f;  // Overflows to infinity at the large codes.
    if (kind == 1) sh[9] = NAN;
    if (kind == 2) sh[channels - 1] = -INFINITY;
    const ChannelAffineRows y{.x = x,
                              .scale = sc.data(),
                              .shift = sh.data(),
                              .floor = -INFINITY,
                              .code_min = code_min.data(),
                              .code_max = code_max.data()};
    std::vector<float> written(n);
    ChannelAffine(x, 0, rows, y.scale, y.shift, y.floor, written.data());
    Quantized out;
    const absl::Status expected = QuantizeTensorInto(written, 12, Rounding::kNearest, 0, 0, out);
    const absl::Status got = QuantizeTensorInto(y, 12, Rounding::kNearest, 0, 0, out);
    EXPECT_FALSE(expected.ok()) << kind;
    EXPECT_EQ(got, expected) << kind;
  }
}

TEST(RoundToFixedPointTest, LeavesEveryValueOnItsGrid) {
  for (int wl : {4, 8, 12, 16}) {
    auto x = RandomFloats(3000, 10 + wl);
    x[17] = 1e3f;  // An outlier sets the exponent.
    const Quantized q = *QuantizeTensor(x, wl, Rounding::kStochastic, 5, 9);
    absl::StatusOr<int64_t> saturated = RoundToFixedPoint(x, wl, Rounding::kStochastic, 5, 9);
    ASSERT_TRUE(saturated.ok());
    EXPECT_EQ(*saturated, q.saturated);
    for (size_t i = 0; i < x.size(); ++i) {
      const double code = wl <= 8 ? q.s8[i] : q.s16[i];
      ASSERT_EQ(x[i], static_cast<float>(std::ldexp(code, -q.exponent))) << wl << " " << i;
    }
  }
  std::vector<float> bad = {1, INFINITY};
  EXPECT_THAT(RoundToFixedPoint(bad, 8, Rounding::kNearest, 0, 0).status().message(),
              HasSubstr("inf"));
}

// The code-level ops are what the FP32-level ops run after quantising: same results.
TEST(CodeLevelOpsTest, MatchTheFp32LevelAndRejectMixedWordLengths) {
  const FixedPointOptions o{.word_length = 12, .seed = 4, .step = 6};
  const int64_t n = 5, f = 7, out = 3;
  const auto x = RandomFloats(n * f, 1), w = RandomFloats(out * f, 2),
             dy = RandomFloats(n * out, 3);
  Quantized qx, qw, qdy;
  ASSERT_TRUE(QuantizeOperand(o, x, Operand::kInput, qx).ok());
  ASSERT_TRUE(QuantizeOperand(o, w, Operand::kWeights, qw).ok());
  ASSERT_TRUE(QuantizeOperand(o, dy, Operand::kGradient, qdy).ok());
  std::vector<float> a(n * out), b(n * out), da(n * f), db(n * f), wa(out * f), wb(out * f);
  ASSERT_TRUE(LinearForward(qx, qw, {}, n, f, out, a).ok());
  ASSERT_TRUE(LinearForward(o, x, w, {}, n, f, out, b).ok());
  EXPECT_EQ(a, b);
  ASSERT_TRUE(LinearBackwardData(qdy, qw, n, f, out, da).ok());
  ASSERT_TRUE(LinearBackwardData(o, dy, w, n, f, out, db).ok());
  EXPECT_EQ(da, db);
  ASSERT_TRUE(LinearBackwardWeights(qdy, qx, n, f, out, wa, {}).ok());
  ASSERT_TRUE(LinearBackwardWeights(o, dy, x, n, f, out, wb, {}).ok());
  EXPECT_EQ(wa, wb);

  Quantized q8;
  ASSERT_TRUE(QuantizeOperand({.word_length = 8}, w, Operand::kWeights, q8).ok());
  EXPECT_THAT(LinearForward(qx, q8, {}, n, f, out, a).status().message(),
              HasSubstr("word lengths disagree: x has 12, w has 8"));
  const ConvGeometry g{.n = 1, .h = 5, .w = 1, .c = 7, .o = 3, .kernel = 1};
  EXPECT_THAT(ConvForward(g, qx, q8, {}, a).status().message(), HasSubstr("word lengths disagree"));
}

}  // namespace
}  // namespace muppet::kernels
