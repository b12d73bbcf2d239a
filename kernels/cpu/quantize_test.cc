#include "kernels/cpu/quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/quantize_internal.h"

namespace muppet::kernels {
namespace {

using ::testing::HasSubstr;

std::vector<float> RandomFloats(size_t n, float stddev, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

// Quantises with every ISA and checks each code (and the saturation count) against the scalar
// reference, element by element.
template <typename Code>
void ExpectAllIsasMatchReference(const std::vector<float>& x, const QuantizeOptions& o) {
  const internal::QuantizeParams p = internal::MakeParams(o);
  std::vector<Code> expected(x.size());
  int64_t expected_saturated = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    bool sat;
    expected[i] = static_cast<Code>(QuantizeElement(x[i], i, p, &sat));
    expected_saturated += sat;
  }
  for (Isa isa : SupportedIsas()) {
    std::vector<Code> codes(x.size());
    const int64_t saturated = Quantize(x, o, std::span<Code>(codes), isa);
    EXPECT_EQ(saturated, expected_saturated) << IsaName(isa);
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(codes[i], expected[i])
          << IsaName(isa) << " element " << i << " of " << x.size() << ", WL " << o.word_length;
    }
  }
}

TEST(QuantizeTest, EveryIsaIsBitExactWithTheScalarReference) {
  std::mt19937_64 rng(1);
  for (size_t n : {1, 15, 16, 127, 128, 129, 1000, 4099}) {
    for (int wl : {2, 4, 8, 12, 14, 16}) {
      for (Rounding rounding : {Rounding::kStochastic, Rounding::kNearest}) {
        const std::vector<float> x = RandomFloats(n, 0.1f + rng() % 100, rng());
        const Range r = *MinMax(x);
        QuantizeOptions o{.word_length = wl,
                          .exponent = ScaleExponent(r, wl),
                          .rounding = rounding,
                          .seed = rng(),
                          .stream = rng()};
        if (wl <= 8) ExpectAllIsasMatchReference<int8_t>(x, o);
        ExpectAllIsasMatchReference<int16_t>(x, o);
        // A too-large exponent saturates many codes: counted alike by every ISA.
        o.exponent += 3;
        if (wl <= 8) ExpectAllIsasMatchReference<int8_t>(x, o);
        ExpectAllIsasMatchReference<int16_t>(x, o);
      }
    }
  }
}

TEST(QuantizeTest, ThreadsSplittingLargeTensorsChangeNothing) {
  // Large enough for every vector path to split the blocks across threads.
  const std::vector<float> x = RandomFloats(300001, 1.0f, 9);
  for (Rounding rounding : {Rounding::kStochastic, Rounding::kNearest}) {
    const QuantizeOptions o{.word_length = 12,
                            .exponent = ScaleExponent(*MinMax(x), 12) + 1,
                            .rounding = rounding,
                            .seed = 5,
                            .stream = 6};
    ExpectAllIsasMatchReference<int16_t>(x, o);
  }
}

TEST(QuantizeTest, NearestRoundingMatchesDoubleArithmetic) {
  const std::vector<float> x = RandomFloats(5000, 3.0f, 2);
  for (int wl : {4, 8, 12, 16}) {
    const int s = ScaleExponent(*MinMax(x), wl);
    std::vector<int16_t> codes(x.size());
    Quantize(x, {.word_length = wl, .exponent = s, .rounding = Rounding::kNearest},
             std::span<int16_t>(codes));
    const double lo = -std::ldexp(1.0, wl - 1), hi = std::ldexp(1.0, wl - 1) - 1;
    for (size_t i = 0; i < x.size(); ++i) {
      const double expected = std::clamp(std::round(std::ldexp(double{x[i]}, s)), lo, hi);
      ASSERT_EQ(codes[i], expected) << i;
    }
  }
}

TEST(ScaleExponentTest, HandComputedValues) {
  // WL 8: M+ = 127.5, M- = -128.5.
  EXPECT_EQ(ScaleExponent({-1.0f, 1.0f}, 8), 6);        // log2(127.5) = 6.99.
  EXPECT_EQ(ScaleExponent({0.0f, 0.99609375f}, 8), 7);  // 127.5 / 0.99609375 = 128 exactly.
  EXPECT_EQ(ScaleExponent({-2.0f, 0.5f}, 8), 6);        // min(255, 64.25) = 64.25.
  EXPECT_EQ(ScaleExponent({-3.0f, -1.0f}, 8), 5);       // Only M-: 128.5 / 3 = 42.8.
  EXPECT_EQ(ScaleExponent({0.25f, 4.0f}, 16), 12);      // Only M+: 32767.5 / 4 = 8191.9.
  EXPECT_EQ(ScaleExponent({0.0f, 0.0f}, 8), 0);         // All zero.
  EXPECT_EQ(ScaleExponent({-1e30f, 1e30f}, 8), -93);    // Large magnitudes: negative s.
  EXPECT_EQ(ScaleExponent({0.0f, 1e-40f}, 16), 127);    // Clamped so that 2^s is a float.
}

TEST(QuantizeTest, StochasticRoundingIsUnbiased) {
  // Values a fraction f past an integer code: the mean code must approach the value. With
  // n = 2^20 draws the mean's standard deviation is sqrt(f (1 - f) / n) <= 4.9e-4; the bias of
  // 16-bit comparisons is at most 2^-16.
  const int n = 1 << 20;
  for (float f : {0.1f, 0.25f, 0.5f, 0.9f}) {
    for (Isa isa : SupportedIsas()) {
      const std::vector<float> x(n, 3.0f + f);
      std::vector<int8_t> codes(n);
      Quantize(x, {.word_length = 8, .exponent = 0, .seed = 99, .stream = 5},
               std::span<int8_t>(codes), isa);
      double sum = 0;
      for (int8_t c : codes) {
        ASSERT_TRUE(c == 3 || c == 4) << int{c};
        sum += c;
      }
      const double sigma = std::sqrt(f * (1 - f) / n);
      EXPECT_NEAR(sum / n, 3.0 + f, 5 * sigma + std::ldexp(1.0, -16)) << f << " " << IsaName(isa);
    }
  }
  // Mean error over a random tensor at WL 4 goes to zero, far below one unit.
  const std::vector<float> x = RandomFloats(1 << 18, 1.0f, 3);
  const int s = ScaleExponent(*MinMax(x), 4);
  std::vector<int8_t> codes(x.size());
  Quantize(x, {.word_length = 4, .exponent = s, .seed = 4}, std::span<int8_t>(codes));
  double error = 0;
  for (size_t i = 0; i < x.size(); ++i) error += codes[i] - std::ldexp(double{x[i]}, s);
  EXPECT_LT(std::abs(error / x.size()), 0.01);
}

TEST(QuantizeTest, SaturationIsCountedExactly) {
  // WL 8 at exponent 0: codes saturate above 127 and below -128.
  const std::vector<float> x = {127.4f, 127.6f, -128.4f, -128.6f, 1000.0f, -1000.0f, 0.0f, 5.5f};
  for (Isa isa : SupportedIsas()) {
    std::vector<int8_t> codes(x.size());
    EXPECT_EQ(Quantize(x, {.word_length = 8, .exponent = 0, .rounding = Rounding::kNearest},
                       std::span<int8_t>(codes), isa),
              4)
        << IsaName(isa);
    EXPECT_EQ(codes, (std::vector<int8_t>{127, 127, -128, -128, 127, -128, 0, 6}));
  }
  // The MuPPET exponent keeps nearest rounding in range, except the value exactly at M+.
  const std::vector<float> edge = {127.5f, -128.5f, 127.49f};
  std::vector<int8_t> codes(edge.size());
  EXPECT_EQ(Quantize(edge,
                     {.word_length = 8,
                      .exponent = ScaleExponent(*MinMax(edge), 8),
                      .rounding = Rounding::kNearest},
                     std::span<int8_t>(codes)),
            2);
}

TEST(QuantizeTest, EdgeTensors) {
  // All zero.
  const std::vector<float> zeros(300, 0.0f);
  const Range zr = *MinMax(zeros);
  EXPECT_EQ(zr.min, 0.0f);
  EXPECT_EQ(zr.max, 0.0f);
  std::vector<int8_t> codes(zeros.size(), 9);
  EXPECT_EQ(Quantize(zeros, {.word_length = 8, .exponent = ScaleExponent(zr, 8)},
                     std::span<int8_t>(codes)),
            0);
  for (int8_t c : codes) EXPECT_EQ(c, 0);
  // All negative: the full negative range is used.
  std::vector<float> negative = RandomFloats(1000, 1.0f, 5);
  for (float& v : negative) v = -std::abs(v) - 0.01f;
  const Range nr = *MinMax(negative);
  std::vector<int16_t> ncodes(negative.size());
  Quantize(negative,
           {.word_length = 12, .exponent = ScaleExponent(nr, 12), .rounding = Rounding::kNearest},
           std::span<int16_t>(ncodes));
  EXPECT_GE(*std::min_element(ncodes.begin(), ncodes.end()), -2048);
  EXPECT_LT(*std::min_element(ncodes.begin(), ncodes.end()), -1024);  // More than half the range.
  EXPECT_LT(*std::max_element(ncodes.begin(), ncodes.end()), 0);
  // One huge outlier: it takes the top code and small values round towards zero.
  std::vector<float> outlier = RandomFloats(1000, 0.01f, 6);
  outlier[500] = 1e6f;
  std::vector<int8_t> ocodes(outlier.size());
  Quantize(outlier,
           {.word_length = 8,
            .exponent = ScaleExponent(*MinMax(outlier), 8),
            .rounding = Rounding::kNearest},
           std::span<int8_t>(ocodes));
  EXPECT_EQ(ocodes[500], 122);  // 1e6 * 2^-13 = 122.07.
  EXPECT_EQ(ocodes[0], 0);
}

TEST(MinMaxTest, MatchesAScalarScanOnEveryIsa) {
  for (size_t n : {1, 7, 16, 33, 1001, 300001}) {  // The last splits across threads.
    const std::vector<float> x = RandomFloats(n, 2.0f, n);
    const float lo = *std::min_element(x.begin(), x.end());
    const float hi = *std::max_element(x.begin(), x.end());
    for (Isa isa : SupportedIsas()) {
      const absl::StatusOr<Range> r = MinMax(x, isa);
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->min, lo) << IsaName(isa);
      EXPECT_EQ(r->max, hi) << IsaName(isa);
    }
  }
}

TEST(MinMaxTest, NonFiniteValuesAreAnErrorNamingTheIndex) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    std::vector<float> x = RandomFloats(100, 1.0f, 7);
    x[37] = bad;
    for (Isa isa : SupportedIsas()) {
      const absl::StatusOr<Range> r = MinMax(x, isa);
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << IsaName(isa);
      EXPECT_THAT(r.status().message(), HasSubstr("element 37 is")) << IsaName(isa);
    }
  }
  std::vector<float> large = RandomFloats(300000, 1.0f, 8);
  large[250000] = std::numeric_limits<float>::quiet_NaN();
  for (Isa isa : SupportedIsas()) {
    EXPECT_THAT(MinMax(large, isa).status().message(), HasSubstr("element 250000 is"));
  }
  EXPECT_FALSE(MinMax(std::vector<float>{}).ok());
}

// A range gathered piece by piece, on separate scans merged in any order, is MinMax's; a
// non-finite element or no element at all leaves no range (the quantiser then scans itself).
TEST(RangeScanTest, PiecesInAnyOrderGiveMinMaxsRange) {
  const std::vector<float> x = RandomFloats(10007, 3.0f, 17);
  const absl::StatusOr<Range> expected = MinMax(x);
  ASSERT_TRUE(expected.ok());
  for (Isa isa : SupportedIsas()) {
    for (int64_t piece : {1, 15, 16, 4096, 10007}) {
      std::vector<RangeScan> scans(3);
      for (int64_t begin = 0, k = 0; begin < static_cast<int64_t>(x.size()); begin += piece, ++k) {
        const int64_t n = std::min<int64_t>(piece, x.size() - begin);
        scans[k % 3].Add(x.data() + begin, n, isa);
      }
      RangeScan total;
      for (int k : {2, 0, 1}) total.Merge(scans[k]);
      ASSERT_TRUE(total.range().has_value()) << IsaName(isa) << " piece " << piece;
      EXPECT_EQ(total.range()->min, expected->min) << IsaName(isa) << " piece " << piece;
      EXPECT_EQ(total.range()->max, expected->max) << IsaName(isa) << " piece " << piece;
    }
  }
  EXPECT_FALSE(RangeScan().range().has_value());
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> y = x;
    y[5000] = bad;
    RangeScan first, second;
    first.Add(y.data(), 4000);
    second.Add(y.data() + 4000, static_cast<int64_t>(y.size()) - 4000);
    EXPECT_TRUE(first.range().has_value());
    first.Merge(second);
    EXPECT_FALSE(first.range().has_value()) << bad;
  }
}

}  // namespace
}  // namespace muppet::kernels
