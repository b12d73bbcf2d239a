// The byte split of 9-16-bit codes (byte_split.h) and the chunked sum gemm_s16.cu builds from it,
// emulated on the host in the device's integer widths, against exact int64 dot products.
#include "kernels/cuda/byte_split.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/gemm_rules.h"

namespace muppet::cuda {
namespace {

TEST(SplitCode16Test, EveryCodeSplitsIntoTwoBytesAndBack) {
  for (int32_t c = INT16_MIN; c <= INT16_MAX; ++c) {
    const SplitCode s = SplitCode16(static_cast<int16_t>(c));
    ASSERT_EQ(JoinCode16(s), c) << "high " << int{s.high} << " low " << int{s.low};
  }
  // The extremes use the bytes' extremes: nothing is left over.
  EXPECT_EQ(SplitCode16(INT16_MIN).high, -128);
  EXPECT_EQ(SplitCode16(INT16_MIN).low, -128);
  EXPECT_EQ(SplitCode16(INT16_MAX).high, 127);
  EXPECT_EQ(SplitCode16(INT16_MAX).low, 127);
}

// One int32 sum over [k0, k1) of products of bytes, as a tensor-core GEMM computes it; fails the
// test if the exact sum would not fit int32.
int32_t ByteDot(const std::vector<SplitCode>& a, const std::vector<SplitCode>& b, bool a_high,
                bool b_high, int64_t k0, int64_t k1) {
  int64_t sum = 0;
  for (int64_t p = k0; p < k1; ++p) {
    sum += int64_t{a_high ? a[p].high : a[p].low} * (b_high ? b[p].high : b[p].low);
  }
  EXPECT_GE(sum, INT32_MIN);
  EXPECT_LE(sum, INT32_MAX);
  return static_cast<int32_t>(sum);
}

// sum ca cb over one row of A and one of B, the way GemmS16 computes it: four byte GEMMs per
// ExactKChunks chunk, joined in int64, plus the shift's term.
int64_t SplitDot(const std::vector<int16_t>& a, const std::vector<int16_t>& b) {
  std::vector<SplitCode> sa, sb;
  int64_t sum_a = 0, sum_b = 0;
  for (int16_t c : a) sa.push_back(SplitCode16(c)), sum_a += c;
  for (int16_t c : b) sb.push_back(SplitCode16(c)), sum_b += c;
  const int64_t k = static_cast<int64_t>(a.size());
  int64_t total = SplitShiftTerm(sum_a, sum_b, k);
  for (const auto& [k0, k1] : ExactKChunks(k, 8, 8)) {
    total +=
        SplitPartial(ByteDot(sa, sb, true, true, k0, k1), ByteDot(sa, sb, true, false, k0, k1),
                     ByteDot(sa, sb, false, true, k0, k1), ByteDot(sa, sb, false, false, k0, k1));
  }
  return total;
}

int64_t ExactDot(const std::vector<int16_t>& a, const std::vector<int16_t>& b) {
  int64_t sum = 0;
  for (size_t p = 0; p < a.size(); ++p) sum += int64_t{a[p]} * b[p];
  return sum;
}

std::vector<int16_t> RandomCodes(int64_t n, int bits, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
  std::vector<int16_t> v(n);
  for (int16_t& x : v) x = static_cast<int16_t>(code(rng));
  return v;
}

TEST(SplitDotTest, EqualsTheExactDotProductOnRandomCodes) {
  std::mt19937 rng(3);
  for (int bits : {9, 12, 14, 16}) {
    for (int64_t k : {4, 36, 4608}) {
      const std::vector<int16_t> a = RandomCodes(k, bits, rng), b = RandomCodes(k, bits, rng);
      EXPECT_EQ(SplitDot(a, b), ExactDot(a, b)) << bits << " bits, k " << k;
    }
  }
}

TEST(SplitDotTest, TheExtremeCodesOverSeveralChunksStayExact) {
  // Longer than one chunk, every byte product at its largest: each int32 sum at its limit.
  const int64_t k = 2 * 131056 + 20;
  for (const auto& [ca, cb] : {std::pair<int16_t, int16_t>{INT16_MIN, INT16_MIN},
                               {INT16_MAX, INT16_MAX},
                               {INT16_MIN, INT16_MAX}}) {
    const std::vector<int16_t> a(k, ca), b(k, cb);
    EXPECT_EQ(SplitDot(a, b), ExactDot(a, b)) << ca << " x " << cb;
  }
  std::mt19937 rng(5);
  const std::vector<int16_t> a = RandomCodes(k, 16, rng), b = RandomCodes(k, 16, rng);
  EXPECT_EQ(SplitDot(a, b), ExactDot(a, b));
}

}  // namespace
}  // namespace muppet::cuda
