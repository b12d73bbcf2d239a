#include "kernels/cpu/philox.h"

#include "gtest/gtest.h"

namespace muppet::kernels {
namespace {

// Known-answer vectors of Random123's tests/kat_vectors ("philox4x32 10" lines).
TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(Philox4x32({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (std::array<uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (std::array<uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(PhiloxTest, StochasticBitsFollowTheDocumentedLayout) {
  const uint64_t seed = 0x0123456789abcdefull, stream = 42;
  // Element 3 * 128 + 5 * 16 + 7: block 3, vector j = 5 (word 2, high half), lane 7.
  const auto words = Philox4x32({3 * 16 + 7, 0, 42, 0}, {0x89abcdef, 0x01234567});
  EXPECT_EQ(StochasticBits(seed, stream, 3 * 128 + 5 * 16 + 7), words[2] >> 16);
  EXPECT_EQ(StochasticBits(seed, stream, 3 * 128 + 4 * 16 + 7), words[2] & 0xFFFF);
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

}  // namespace
}  // namespace muppet::kernels
