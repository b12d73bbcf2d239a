// The shared per-element arithmetic, on the host: Philox against its published known answers,
// the rounding-bit layout, the scale exponent and one element's code against hand-worked cases.
#include "kernels/common/fixed_point_element.h"

#include <cmath>

#include "gtest/gtest.h"

namespace muppet::kernels {
namespace {

// Known-answer vectors of Random123's tests/kat_vectors ("philox4x32 10" lines).
TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(Philox4x32({{0, 0, 0, 0}}, 0, 0),
            (PhiloxWords{{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}));
  EXPECT_EQ(Philox4x32({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff),
            (PhiloxWords{{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}));
  EXPECT_EQ(Philox4x32({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0),
            (PhiloxWords{{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}));
}

TEST(PhiloxTest, StochasticBitsFollowTheDocumentedLayout) {
  const uint64_t seed = 0x0123456789abcdefull, stream = 42;
  // Element 3 * 128 + 5 * 16 + 7: block 3, vector j = 5 (word 2, high half), lane 7.
  const PhiloxWords words = Philox4x32({{3 * 16 + 7, 0, 42, 0}}, 0x89abcdef, 0x01234567);
  EXPECT_EQ(StochasticBits(seed, stream, 3 * 128 + 5 * 16 + 7), words.word[2] >> 16);
  EXPECT_EQ(StochasticBits(seed, stream, 3 * 128 + 4 * 16 + 7), words.word[2] & 0xFFFF);
}

TEST(PhiloxTest, StochasticBitsLookUniform) {
  // 2^16 draws of 16-bit values: mean 32767.5, standard deviation of the mean 74.
  double sum = 0;
  const int n = 1 << 16;
  for (int i = 0; i < n; ++i) sum += StochasticBits(7, 1, i);
  EXPECT_NEAR(sum / n, 32767.5, 5 * 74);
  // Different streams and seeds give different bits.
  int same_stream = 0, same_seed = 0;
  for (int i = 0; i < 1000; ++i) {
    same_stream += StochasticBits(7, 1, i) == StochasticBits(7, 2, i);
    same_seed += StochasticBits(7, 1, i) == StochasticBits(8, 1, i);
  }
  EXPECT_LT(same_stream, 5);
  EXPECT_LT(same_seed, 5);
}

// Constant-evaluable, as the device code needs it to be.
static_assert(StochasticBits(1, 2, 3) == StochasticBits(1, 2, 3));

TEST(ScaleExponentTest, PicksTheLargestScaleThatFitsTheRange) {
  // 8 bits: codes in [-128, 127]. max 1.0: 127.5 / 1 = 127.5, floor(log2) = 6.
  EXPECT_EQ(ScaleExponentOf(-0.5f, 1.0f, 8), 6);
  // The negative side decides when it is larger in magnitude: -128.5 / -3 = 42.8 -> 5.
  EXPECT_EQ(ScaleExponentOf(-3.0f, 1.0f, 8), 5);
  EXPECT_EQ(ScaleExponentOf(0.0f, 0.0f, 12), 0);      // All zero.
  EXPECT_EQ(ScaleExponentOf(0.0f, 1e-40f, 16), 127);  // Clamped: 2^s stays a float.
  EXPECT_EQ(ScaleExponentOf(-3e38f, 0.0f, 2), static_cast<int>(std::floor(std::log2(2.5 / 3e38))));
  // Against floor(log2(.)) computed directly, over many ranges and word lengths.
  for (int wl = 2; wl <= 16; ++wl) {
    for (float max : {1e-30f, 0.01f, 0.3f, 1.0f, 7.5f, 1e5f, 3e30f}) {
      const double m = std::ldexp(1.0, wl - 1) - 0.5;
      EXPECT_EQ(ScaleExponentOf(-max / 4, max, wl),
                static_cast<int>(std::floor(std::log2(m / max))))
          << wl << " " << max;
    }
  }
}

TEST(QuantizeElementTest, RoundsAndSaturatesAsDocumented) {
  const QuantizeParams nearest{.scale = 4, .lo = -128, .hi = 127, .stochastic = false};
  bool saturated = false;
  EXPECT_EQ(QuantizeElement(0.375f, 0, nearest, &saturated), 2.0f);  // 1.5 -> 2 (away from 0).
  EXPECT_EQ(QuantizeElement(-0.375f, 0, nearest, &saturated), -2.0f);
  EXPECT_EQ(QuantizeElement(0.3f, 0, nearest, &saturated), 1.0f);
  EXPECT_FALSE(saturated);
  EXPECT_EQ(QuantizeElement(40.0f, 0, nearest, &saturated), 127.0f);
  EXPECT_TRUE(saturated);
  EXPECT_EQ(QuantizeElement(-40.0f, 0, nearest, &saturated), -128.0f);
  EXPECT_TRUE(saturated);
  // Stochastic: up with probability frac, decided by the element's 16 bits.
  const QuantizeParams stochastic{
      .scale = 1, .lo = -128, .hi = 127, .stochastic = true, .seed = 9, .stream = 3};
  int up = 0;
  for (uint64_t i = 0; i < 4096; ++i) {
    const float q = QuantizeElement(2.25f, i, stochastic, &saturated);
    EXPECT_EQ(q == 3.0f, StochasticBits(9, 3, i) < 0.25f * 65536) << i;
    up += q == 3.0f;
  }
  EXPECT_NEAR(up / 4096.0, 0.25, 0.03);
  EXPECT_EQ(QuantizeElement(2.0f, 17, stochastic, &saturated), 2.0f);  // On the grid: exact.
}

}  // namespace
}  // namespace muppet::kernels
