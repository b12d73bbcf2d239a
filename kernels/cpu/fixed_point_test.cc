#include "kernels/cpu/fixed_point.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
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
