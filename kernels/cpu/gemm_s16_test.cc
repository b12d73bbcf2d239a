#include "kernels/cpu/gemm_s16.h"

#include <climits>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
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

// A row-major A (m x k) as an implicit A: each row's segments of 2 * pairs_per_segment codes
// stored in reverse order with a gap of two codes between them, then a row of zeros.
class ScatteredRows final : public S16ImplicitRows {
 public:
  ScatteredRows(const GemmShape& s, const std::vector<int16_t>& a, int64_t pairs_per_segment)
      : m_(s.m), pairs_(pairs_per_segment), row_(s.k / (2 * pairs_) * (2 * pairs_ + 2)) {
    const int64_t segments = s.k / (2 * pairs_);
    for (int64_t g = 0; g < segments; ++g)
      offsets_.push_back((segments - 1 - g) * (2 * pairs_ + 2));
    codes_.assign((s.m + 1) * row_, 7777);  // Gaps hold codes the GEMM must never read...
    std::fill(codes_.begin() + s.m * row_, codes_.end(), 0);  // ...and past m, zeros.
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t p = 0; p < s.k; ++p) {
        codes_[i * row_ + offsets_[p / (2 * pairs_)] + p % (2 * pairs_)] = a[i * s.k + p];
      }
    }
  }
  int64_t PairsPerSegment() const override { return pairs_; }
  std::span<const int64_t> SegmentOffsets() const override { return offsets_; }
  void Starts(int64_t i0, int count, const int16_t** starts) const override {
    for (int r = 0; r < count; ++r) starts[r] = codes_.data() + std::min(i0 + r, m_) * row_;
  }

 private:
  const int64_t m_, pairs_, row_;
  std::vector<int64_t> offsets_;
  std::vector<int16_t> codes_;
};

void ExpectMatches(const std::vector<float>& expected, int64_t expected_saturated,
                   const std::vector<float>& c, absl::StatusOr<int64_t> saturated,
                   const std::string& what) {
  ASSERT_TRUE(saturated.ok()) << saturated.status();
  EXPECT_EQ(*saturated, expected_saturated) << what;
  for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], expected[i]) << what << " at " << i;
}

// Every ISA against the reference, on packed and (for row-major A of even k) implicit A:
// identical floats and saturation counts.
void ExpectAllIsasMatch(const GemmShape& s, const std::vector<int16_t>& a,
                        const std::vector<int16_t>& b, float scale, int64_t block_pairs = 16) {
  std::vector<float> expected(s.m * s.n);
  const int64_t expected_saturated =
      GemmS16Reference(s, a.data(), b.data(), scale, expected.data(), block_pairs);
  const std::string shape = absl::StrCat(" m=", s.m, " n=", s.n, " k=", s.k);
  for (Isa isa : SupportedIsas()) {
    std::vector<float> c(s.m * s.n, -1.0f);
    ExpectMatches(expected, expected_saturated, c,
                  GemmS16(s, a.data(), b.data(), scale, c.data(), block_pairs, isa),
                  absl::StrCat(IsaName(isa), shape));
    if (s.a_transposed || s.k % 2) continue;
    for (int64_t pairs : {int64_t{1}, s.k / 2}) {
      std::fill(c.begin(), c.end(), -1.0f);
      ExpectMatches(expected, expected_saturated, c,
                    GemmS16Implicit(s, ScatteredRows(s, a, pairs), b.data(), scale, c.data(),
                                    block_pairs, isa),
                    absl::StrCat(IsaName(isa), " implicit, segments of ", pairs, " pairs", shape));
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
  // An implicit A whose segments do not make up k.
  const std::vector<int16_t> a(2 * 4, 1), b(4, 1);
  r = GemmS16Implicit({.m = 2, .n = 1, .k = 6}, ScatteredRows({.m = 2, .n = 1, .k = 4}, a, 1),
                      b.data(), 1.0f, &c, 16);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "GemmS16Implicit: k=6 is not 2 segments of 1 pairs");
}

}  // namespace
}  // namespace muppet::kernels
