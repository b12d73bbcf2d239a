#include "kernels/cpu/fixed_point_linear.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/fixed_point_test_util.h"

namespace muppet::kernels {
namespace {

using testing::DequantizedOperand;
using ::testing::HasSubstr;
using testing::RandomFloats;

class FixedPointLinearTest : public ::testing::TestWithParam<std::tuple<int, Rounding>> {
 protected:
  FixedPointOptions Options() const {
    return {.word_length = std::get<0>(GetParam()),
            .rounding = std::get<1>(GetParam()),
            .seed = 11,
            .step = 4};
  }
  const int64_t n = 7, f = 13, o = 5;
};

TEST_P(FixedPointLinearTest, ForwardIsTheProductOfTheQuantisedOperands) {
  const auto x = RandomFloats(n * f, 1), w = RandomFloats(o * f, 2), bias = RandomFloats(o, 3);
  std::vector<float> y(n * o);
  ASSERT_TRUE(LinearForward(Options(), x, w, bias, n, f, o, y).ok());
  const std::vector<double> qx = DequantizedOperand(x, Options(), Operand::kInput),
                            qw = DequantizedOperand(w, Options(), Operand::kWeights);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < o; ++j) {
      double product = 0;
      for (int64_t p = 0; p < f; ++p) product += qx[i * f + p] * qw[j * f + p];
      // The integer product is exact and its scaling a power of two: only the bias add rounds.
      EXPECT_EQ(y[i * o + j], static_cast<float>(product) + bias[j]) << i << "," << j;
    }
  }
}

TEST_P(FixedPointLinearTest, BackwardDataIsTheProductOfTheQuantisedOperands) {
  const auto dy = RandomFloats(n * o, 4), w = RandomFloats(o * f, 5);
  std::vector<float> dx(n * f);
  ASSERT_TRUE(LinearBackwardData(Options(), dy, w, n, f, o, dx).ok());
  const std::vector<double> qdy = DequantizedOperand(dy, Options(), Operand::kGradient),
                            qw = DequantizedOperand(w, Options(), Operand::kWeights);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < f; ++p) {
      double sum = 0;
      for (int64_t j = 0; j < o; ++j) sum += qdy[i * o + j] * qw[j * f + p];
      EXPECT_EQ(dx[i * f + p], static_cast<float>(sum));
    }
  }
}

TEST_P(FixedPointLinearTest, BackwardWeightsIsTheProductOfTheQuantisedOperands) {
  const auto dy = RandomFloats(n * o, 6), x = RandomFloats(n * f, 7);
  std::vector<float> dw(o * f), db(o);
  ASSERT_TRUE(LinearBackwardWeights(Options(), dy, x, n, f, o, dw, db).ok());
  const std::vector<double> qdy = DequantizedOperand(dy, Options(), Operand::kGradient),
                            qx = DequantizedOperand(x, Options(), Operand::kInput);
  for (int64_t j = 0; j < o; ++j) {
    double bias_sum = 0;
    for (int64_t i = 0; i < n; ++i) bias_sum += qdy[i * o + j];
    EXPECT_EQ(db[j], static_cast<float>(bias_sum));
    for (int64_t p = 0; p < f; ++p) {
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += qdy[i * o + j] * qx[i * f + p];
      EXPECT_EQ(dw[j * f + p], static_cast<float>(sum));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(WordLengths, FixedPointLinearTest,
                         ::testing::Combine(::testing::Values(4, 8, 12, 14, 16),
                                            ::testing::Values(Rounding::kStochastic,
                                                              Rounding::kNearest)));

TEST(FixedPointLinearAccuracyTest, SixteenBitsTrackFp64) {
  // At 16 bits the fixed-point result is within a few quantisation steps of the exact product.
  const int64_t n = 32, f = 100, o = 20;
  const auto x = RandomFloats(n * f, 8), w = RandomFloats(o * f, 9);
  std::vector<float> y(n * o);
  ASSERT_TRUE(
      LinearForward({.word_length = 16, .rounding = Rounding::kNearest}, x, w, {}, n, f, o, y)
          .ok());
  double max_error = 0, max_value = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < o; ++j) {
      double exact = 0;
      for (int64_t p = 0; p < f; ++p) exact += double{x[i * f + p]} * w[j * f + p];
      max_error = std::max(max_error, std::abs(y[i * o + j] - exact));
      max_value = std::max(max_value, std::abs(exact));
    }
  }
  EXPECT_LT(max_error / max_value, 1e-3);
}

TEST(FixedPointLinearErrorsTest, BadInputIsNamed) {
  std::vector<float> x(6, 1.0f), w(6, 1.0f), y(4);
  absl::StatusOr<int64_t> r = LinearForward({}, x, w, {}, 2, 3, 3, y);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("w has 6 (expected 9)"));
  x[2] = std::nanf("");
  std::vector<float> y6(6);
  r = LinearForward({}, x, std::vector<float>(9, 1.0f), {}, 2, 3, 3, y6);
  EXPECT_THAT(r.status().message(), HasSubstr("element 2 is"));
  EXPECT_THAT(QuantizeTensor(w, 17, Rounding::kNearest, 0, 0).status().message(),
              HasSubstr("word length must be in [2, 16], got 17"));
}

}  // namespace
}  // namespace muppet::kernels
