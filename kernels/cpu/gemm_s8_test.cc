#include "kernels/cpu/gemm_s8.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace muppet::kernels {
namespace {

std::vector<int8_t> RandomCodes(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(-128, 127);
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = static_cast<int8_t>(code(rng));
  return v;
}

void ExpectMatchesReference(const GemmShape& s, std::mt19937& rng, float scale) {
  const std::vector<int8_t> a = RandomCodes(s.m * s.k, rng), b = RandomCodes(s.k * s.n, rng);
  std::vector<float> c(s.m * s.n, -1.0f), expected(s.m * s.n);
  ASSERT_TRUE(GemmS8(s, a.data(), b.data(), scale, c.data()).ok());
  GemmS8Reference(s, a.data(), b.data(), scale, expected.data());
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_EQ(c[i], expected[i]) << "m=" << s.m << " n=" << s.n << " k=" << s.k << " at " << i
                                 << " transposed " << s.a_transposed << s.b_transposed;
  }
}

TEST(GemmS8Test, BitExactWithReferenceOnOddShapes) {
  std::mt19937 rng(1);
  for (auto [m, n, k] :
       {std::tuple{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {64, 16, 144}, {127, 129, 300}}) {
    for (bool at : {false, true}) {
      for (bool bt : {false, true}) {
        ExpectMatchesReference({.m = m, .n = n, .k = k, .a_transposed = at, .b_transposed = bt},
                               rng, 0.0078125f);  // 2^-7.
      }
    }
  }
}

TEST(GemmS8Test, LongReductionsAreChunkedWithoutOverflow) {
  // Every product is (-128)(-128) = 2^14: one int32 sum of 200000 of them would wrap.
  const GemmShape s{.m = 2, .n = 3, .k = 200000};
  const std::vector<int8_t> a(s.m * s.k, -128), b(s.k * s.n, -128);
  std::vector<float> c(s.m * s.n);
  ASSERT_TRUE(GemmS8(s, a.data(), b.data(), 1.0f, c.data()).ok());
  for (float v : c) EXPECT_EQ(v, 200000.0f * 16384.0f);
  std::mt19937 rng(2);
  ExpectMatchesReference({.m = 3, .n = 2, .k = 140000, .a_transposed = true}, rng, 0.25f);
}

TEST(GemmS8Test, RejectsEmptyShapes) {
  const int8_t x = 0;
  float c = 0;
  const absl::Status s = GemmS8({.m = 0, .n = 1, .k = 1}, &x, &x, 1.0f, &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "GemmS8: dimensions must be positive, got m=0 n=1 k=1");
}

}  // namespace
}  // namespace muppet::kernels
