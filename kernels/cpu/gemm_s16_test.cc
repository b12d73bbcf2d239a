#include "kernels/cpu/gemm_s16.h"

#include <climits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace muppet::kernels {
namespace {

std::vector<int16_t> RandomCodes(size_t n, int word_length, std::mt19937& rng) {
  const int top = 1 << (word_length - 1);
  std::uniform_int_distribution<int> code(-top, top - 1);
  std::vector<int16_t> v(n);
  for (int16_t& x : v) x = static_cast<int16_t>(code(rng));
  return v;
}

// Every ISA against the reference: identical floats and saturation counts.
void ExpectAllIsasMatch(const GemmShape& s, const std::vector<int16_t>& a,
                        const std::vector<int16_t>& b, float scale, int64_t block_pairs = 16) {
  std::vector<float> expected(s.m * s.n);
  const int64_t expected_saturated =
      GemmS16Reference(s, a.data(), b.data(), scale, expected.data(), block_pairs);
  for (Isa isa : SupportedIsas()) {
    std::vector<float> c(s.m * s.n, -1.0f);
    absl::StatusOr<int64_t> saturated =
        GemmS16(s, a.data(), b.data(), scale, c.data(), block_pairs, isa);
    ASSERT_TRUE(saturated.ok()) << saturated.status();
    EXPECT_EQ(*saturated, expected_saturated) << IsaName(isa);
    for (size_t i = 0; i < c.size(); ++i) {
      ASSERT_EQ(c[i], expected[i])
          << IsaName(isa) << " m=" << s.m << " n=" << s.n << " k=" << s.k << " at " << i;
    }
  }
}

TEST(GemmS16Test, EveryIsaIsBitExactWithTheReference) {
  std::mt19937 rng(1);
  for (auto [m, n, k] : {std::tuple{1, 1, 1},
                         {5, 7, 3},
                         {6, 32, 256},
                         {13, 33, 257},
                         {31, 17, 600},
                         {64, 16, 144}}) {
    for (int wl : {12, 14, 16}) {
      for (bool at : {false, true}) {
        for (bool bt : {false, true}) {
          const GemmShape s{.m = m, .n = n, .k = k, .a_transposed = at, .b_transposed = bt};
          ExpectAllIsasMatch(s, RandomCodes(m * k, wl, rng), RandomCodes(k * n, wl, rng),
                             0.0001220703125f,  // 2^-13.
                             GemmS16BlockPairs(wl));
        }
      }
    }
  }
}

TEST(GemmS16Test, BlocksCannotOverflowUpTo14Bits) {
  EXPECT_EQ(GemmS16BlockPairs(8), 128);
  EXPECT_EQ(GemmS16BlockPairs(12), 128);  // (2^31 - 1) / 2^23 = 255, capped.
  EXPECT_EQ(GemmS16BlockPairs(13), 63);
  EXPECT_EQ(GemmS16BlockPairs(14), 15);
  EXPECT_EQ(GemmS16BlockPairs(16), 16);
  // Worst-case 14-bit codes, -8192 everywhere, over a long reduction: exact, no saturation.
  const GemmShape s{.m = 3, .n = 2, .k = 1000};
  const std::vector<int16_t> a(s.m * s.k, -8192), b(s.k * s.n, -8192);
  std::vector<float> c(s.m * s.n);
  EXPECT_EQ(*GemmS16(s, a.data(), b.data(), 1.0f, c.data(), GemmS16BlockPairs(14)), 0);
  for (float v : c) EXPECT_EQ(v, 1000.0f * 8192.0f * 8192.0f);
}

TEST(GemmS16Test, SaturationIsCountedAndNeverWraps) {
  const GemmShape s{.m = 2, .n = 3, .k = 4};
  // Two pairs of 32767^2: the second pushes past INT32_MAX.
  std::vector<int16_t> a(s.m * s.k, 32767), b(s.k * s.n, 32767);
  ExpectAllIsasMatch(s, a, b, 1.0f);
  std::vector<float> c(s.m * s.n);
  EXPECT_EQ(*GemmS16(s, a.data(), b.data(), 1.0f, c.data(), 16), 6);
  for (float v : c) EXPECT_EQ(v, static_cast<float>(INT_MAX));
  // Negative: towards INT32_MIN.
  std::fill(b.begin(), b.end(), -32768);
  ExpectAllIsasMatch(s, a, b, 1.0f);
  EXPECT_EQ(*GemmS16(s, a.data(), b.data(), 1.0f, c.data(), 16), 6);
  for (float v : c) EXPECT_EQ(v, static_cast<float>(INT_MIN));
  // One pair of (-32768)^2 twice: 2^31, one past INT32_MAX.
  const GemmShape one_pair{.m = 2, .n = 2, .k = 2};
  const std::vector<int16_t> lowest(4, -32768);
  ExpectAllIsasMatch(one_pair, lowest, lowest, 1.0f);
  EXPECT_EQ(*GemmS16(one_pair, lowest.data(), lowest.data(), 1.0f, c.data(), 16), 4);
  // A single pair of 32767^2 fits exactly.
  const GemmShape fits{.m = 1, .n = 1, .k = 2};
  const std::vector<int16_t> top(2, 32767);
  EXPECT_EQ(*GemmS16(fits, top.data(), top.data(), 1.0f, c.data(), 16), 0);
  EXPECT_EQ(c[0], static_cast<float>(2 * 32767 * 32767));
}

TEST(GemmS16Test, MixedSignsNearTheBoundsMatchOnEveryIsa) {
  // Large codes of both signs: accumulators hit, leave and re-enter saturation.
  std::mt19937 rng(3);
  std::vector<int16_t> a(7 * 500), b(500 * 9);
  std::uniform_int_distribution<int> big(20000, 32767), sign(0, 1);
  for (int16_t& x : a) x = static_cast<int16_t>(sign(rng) ? big(rng) : -big(rng) - 1);
  for (int16_t& x : b) x = static_cast<int16_t>(big(rng));
  ExpectAllIsasMatch({.m = 7, .n = 9, .k = 500}, a, b, 1.0f);
  ExpectAllIsasMatch({.m = 7, .n = 9, .k = 500}, a, b, 1.0f, 128);
}

TEST(GemmS16Test, RejectsEmptyShapes) {
  const int16_t x = 0;
  float c = 0;
  absl::StatusOr<int64_t> r = GemmS16({.m = 1, .n = 1, .k = 0}, &x, &x, 1.0f, &c, 16);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = GemmS16({.m = 1, .n = 1, .k = 1}, &x, &x, 1.0f, &c, 0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace muppet::kernels
