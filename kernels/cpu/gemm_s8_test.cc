#include "kernels/cpu/gemm_s8.h"

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace muppet::kernels {
namespace {

std::vector<int8_t> RandomCodes(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(-128, 127);
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = static_cast<int8_t>(code(rng));
  return v;
}

// Codes that make every saturating shortcut fail: only the extremes -128 and 127.
std::vector<int8_t> ExtremeCodes(size_t n, std::mt19937& rng) {
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = rng() % 2 ? int8_t{-128} : int8_t{127};
  return v;
}

std::string Describe(const GemmShape& s, Int8Route route) {
  return std::string(Int8RouteName(route)) + " m=" + std::to_string(s.m) +
         " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
         " transposed=" + std::to_string(s.a_transposed) + std::to_string(s.b_transposed);
}

void ExpectMatchesReference(const GemmShape& s, const std::vector<int8_t>& a,
                            const std::vector<int8_t>& b, float scale, Int8Route route) {
  std::vector<float> c(s.m * s.n, -1.0f), expected(s.m * s.n);
  ASSERT_TRUE(GemmS8(s, a.data(), b.data(), scale, c.data(), route).ok()) << Describe(s, route);
  GemmS8Reference(s, a.data(), b.data(), scale, expected.data());
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_EQ(c[i], expected[i]) << Describe(s, route) << " at " << i;
  }
  if (s.k > kGemmS8MaxChunk) return;
  std::vector<int32_t> exact(s.m * s.n, -1);
  ASSERT_TRUE(GemmS8S32(s, a.data(), b.data(), exact.data(), route).ok()) << Describe(s, route);
  GemmS8Reference(s, a.data(), b.data(), 1.0f, expected.data());  // Integers below 2^24 here.
  for (size_t i = 0; i < exact.size(); ++i) {
    ASSERT_EQ(static_cast<float>(exact[i]), expected[i]) << Describe(s, route) << " at " << i;
  }
}

class GemmS8RouteTest : public ::testing::TestWithParam<Int8Route> {};

// Shapes that reach every packing path: rows and columns multiples of the 4 x 16 tile and not,
// k a multiple of 16, of 4, and neither, both storage orders of each operand.
TEST_P(GemmS8RouteTest, BitExactWithReferenceOnOddShapes) {
  std::mt19937 rng(1);
  for (auto [m, n, k] : {std::tuple{1, 1, 1},
                         {3, 5, 7},
                         {4, 16, 16},
                         {17, 33, 65},
                         {8, 32, 36},
                         {64, 16, 144},
                         {127, 129, 300}}) {
    for (bool at : {false, true}) {
      for (bool bt : {false, true}) {
        const GemmShape s{.m = m, .n = n, .k = k, .a_transposed = at, .b_transposed = bt};
        ExpectMatchesReference(s, RandomCodes(m * k, rng), RandomCodes(k * n, rng),
                               0.0078125f /* 2^-7 */, GetParam());
      }
    }
  }
}

// -128 and 127 only: every pair sum a vpmaddubsw route could saturate (2 x 127 x -128 after a
// zero-point shift, or 2 x 128 x 128), and A full of the -128 codes the AVX2 kernel corrects.
TEST_P(GemmS8RouteTest, ExtremeCodesAreExact) {
  std::mt19937 rng(3);
  for (auto [m, n, k] : {std::tuple{4, 16, 64}, {9, 40, 257}, {64, 64, 576}}) {
    for (bool at : {false, true}) {
      const GemmShape s{.m = m, .n = n, .k = k, .a_transposed = at};
      ExpectMatchesReference(s, ExtremeCodes(m * k, rng), ExtremeCodes(k * n, rng), 1.0f,
                             GetParam());
      ExpectMatchesReference(s, std::vector<int8_t>(m * k, -128), ExtremeCodes(k * n, rng), 1.0f,
                             GetParam());
    }
  }
}

std::vector<int8_t> NonNegativeCodes(size_t n, std::mt19937& rng) {
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = rng() % 2 ? int8_t{127} : static_cast<int8_t>(rng() % 128);
  return v;
}

// Operands without negative codes (ReLU outputs) take the kernels' sign-free paths: A, B, and a
// matrix whose first rows only are non-negative, so tiles of both kinds meet in one product.
TEST_P(GemmS8RouteTest, NonNegativeOperandsAreExact) {
  std::mt19937 rng(4);
  for (auto [m, n, k] : {std::tuple{8, 32, 64}, {13, 40, 147}}) {
    const GemmShape s{.m = m, .n = n, .k = k};
    ExpectMatchesReference(s, NonNegativeCodes(m * k, rng), ExtremeCodes(k * n, rng), 1.0f,
                           GetParam());
    ExpectMatchesReference(s, ExtremeCodes(m * k, rng), NonNegativeCodes(k * n, rng), 1.0f,
                           GetParam());
    std::vector<int8_t> mixed = ExtremeCodes(m * k, rng);
    const std::vector<int8_t> top = NonNegativeCodes(4 * k, rng);
    std::copy(top.begin(), top.end(), mixed.begin());
    ExpectMatchesReference(s, mixed, ExtremeCodes(k * n, rng), 1.0f, GetParam());
  }
}

// The Zen 3 failure: 3 x 2 x 140000 came out -30744.5 instead of -230322 on oneDNN without VNNI.
TEST_P(GemmS8RouteTest, LongReductionsAreChunkedWithoutOverflow) {
  // Every product is (-128)(-128) = 2^14: one int32 sum of 200000 of them would wrap.
  const GemmShape s{.m = 2, .n = 3, .k = 200000};
  const std::vector<int8_t> a(s.m * s.k, -128), b(s.k * s.n, -128);
  std::vector<float> c(s.m * s.n);
  ASSERT_TRUE(GemmS8(s, a.data(), b.data(), 1.0f, c.data(), GetParam()).ok());
  for (float v : c) EXPECT_EQ(v, 200000.0f * 16384.0f);
  std::mt19937 rng(2);
  const GemmShape t{.m = 3, .n = 2, .k = 140000, .a_transposed = true};
  ExpectMatchesReference(t, RandomCodes(t.m * t.k, rng), RandomCodes(t.k * t.n, rng), 0.25f,
                         GetParam());
}

INSTANTIATE_TEST_SUITE_P(EveryExactRoute, GemmS8RouteTest,
                         ::testing::ValuesIn(SupportedInt8Routes()), [](const auto& info) {
                           std::string name(Int8RouteName(info.param));
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

TEST(GemmS8Test, RejectsEmptyShapesAndOverlongExactSums) {
  const int8_t x = 0;
  float c = 0;
  const absl::Status s = GemmS8({.m = 0, .n = 1, .k = 1}, &x, &x, 1.0f, &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "GemmS8: dimensions must be positive, got m=0 n=1 k=1");
  int32_t exact = 0;
  const absl::Status t = GemmS8S32({.m = 1, .n = 1, .k = kGemmS8MaxChunk + 1}, &x, &x, &exact);
  EXPECT_EQ(t.code(), absl::StatusCode::kInvalidArgument);
}

// A library route that can saturate on this machine is never chosen, and refused if asked for.
TEST(GemmS8Test, OneDnnIsUsedOnlyWhereItIsExact) {
  EXPECT_EQ(ActiveInt8Route() == Int8Route::kOneDnnVnni, OneDnnInt8IsExact());
  if (OneDnnInt8IsExact()) return;
  const int8_t x = 1;
  float c = 0;
  const absl::Status s = GemmS8({.m = 1, .n = 1, .k = 1}, &x, &x, 1.0f, &c, Int8Route::kOneDnnVnni);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
}

// oneDNN never runs its AMX kernels unless ONEDNN_MAX_CPU_ISA asks for them (they crashed in
// training on an AMX machine); on a machine without AMX the cap is a no-op.
TEST(GemmS8Test, OneDnnIsCappedBelowAmxUnlessAskedOtherwise) {
  const char* forced = std::getenv("ONEDNN_MAX_CPU_ISA");
  const bool asked = forced != nullptr && *forced != '\0';
  EXPECT_EQ(OneDnnCappedBelowAmx(), !asked);
  if (asked) return;
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  EXPECT_NE(isa & dnnl_cpu_isa_avx512_core_amx, static_cast<unsigned>(dnnl_cpu_isa_avx512_core_amx))
      << "oneDNN's effective ISA 0x" << std::hex << isa << " includes AMX";
}

}  // namespace
}  // namespace muppet::kernels
