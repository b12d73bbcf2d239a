// The in-place 8-bit forward kernels, each of them (AVX512-VNNI and AMX), against the integer
// convolution by the definition (testing::ForEachTerm): on every machine that has them, whichever
// one the dispatch prefers there.
#include "kernels/cpu/conv_int8.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cpu/fixed_point_test_util.h"
#include "kernels/cpu/quantize.h"

namespace muppet::kernels::internal {
namespace {

// Random codes, a quarter of them at -128 or 127.
Quantized RandomCodes(int64_t n, int exponent, std::mt19937& rng) {
  Quantized q{.word_length = 8, .exponent = exponent};
  q.s8.resize(n);
  for (int8_t& c : q.s8) {
    const int r = static_cast<int>(rng() % 8);
    c = static_cast<int8_t>(r == 0 ? -128 : r == 1 ? 127 : static_cast<int>(rng() % 256) - 128);
  }
  return q;
}

// Shapes for each way the kernels split a pass: output rows longer than 16 pixels, exactly 16
// and shorter (the AMX kernel's groups); runs of one kernel row (all taps live) of 48, 96 and 192
// codes and of one tap (dead taps, 1x1), in AMX chunks of 48, 64, 36, 20, 32 and 12 codes;
// 1-5 units of 16 outputs, the last partial; strides 1 and 2.
constexpr ConvGeometry kShapes[] = {
    {.n = 2, .h = 28, .w = 28, .c = 16, .o = 16, .kernel = 3, .padding = 1},
    {.n = 3, .h = 16, .w = 16, .c = 32, .o = 32, .kernel = 3, .padding = 1},
    {.n = 4, .h = 7, .w = 7, .c = 64, .o = 64, .kernel = 3, .padding = 1},
    {.n = 2, .h = 9, .w = 19, .c = 12, .o = 40, .kernel = 3, .padding = 1},
    {.n = 2, .h = 15, .w = 15, .c = 16, .o = 80, .kernel = 3, .stride = 2, .padding = 1},
    {.n = 3, .h = 6, .w = 21, .c = 20, .o = 7, .kernel = 1},
    {.n = 3, .h = 1, .w = 1, .c = 32, .o = 9, .kernel = 3, .padding = 1},
    {.n = 2, .h = 5, .w = 5, .c = 4, .o = 33, .kernel = 3, .padding = 1},
};

// Every output of ForwardInt8InPlace on `amx`'s kernel, with and without an addend, equal to the
// exact integer sum scaled (plus the addend), and its range equal to the output's.
void ExpectExact(bool amx) {
  std::mt19937 rng(41);
  for (const ConvGeometry& g : kShapes) {
    ASSERT_TRUE(S8ForwardInPlace(g));
    const int64_t k = g.kernel * g.kernel * g.c, ys = g.n * g.out_h() * g.out_w() * g.o;
    const Quantized qx = RandomCodes(g.n * g.h * g.w * g.c, 2, rng);
    const Quantized qw = RandomCodes(g.o * k, 5, rng);
    std::vector<float> addend(ys);
    for (float& a : addend) a = static_cast<float>(static_cast<int>(rng() % 1000) - 500) / 64;
    std::vector<int64_t> sums(ys, 0);
    testing::ForEachTerm(
        g, [&](int64_t xi, int64_t yi, int64_t wi) { sums[yi] += int64_t{qx.s8[xi]} * qw.s8[wi]; });
    for (bool with_addend : {false, true}) {
      const std::string where = absl::StrCat(amx ? "AMX" : "AVX-512", ", C=", g.c, " O=", g.o, " ",
                                             g.h, "x", g.w, " stride ", g.stride, " kernel ",
                                             g.kernel, with_addend ? ", with an addend" : "");
      std::vector<float> y(ys, NAN);
      RangeScan range;
      ForwardInt8InPlace(g, qx, qw, y.data(), &range, with_addend ? addend.data() : nullptr, amx);
      for (int64_t i = 0; i < ys; ++i) {
        // Sums below 2^24: exact in float, then one rounding for the addend.
        const float exact = static_cast<float>(std::ldexp(sums[i], -7));  // 2^-(2 + 5).
        const float want = with_addend ? exact + addend[i] : exact;
        ASSERT_EQ(y[i], want) << where << ", output " << i;
      }
      const absl::StatusOr<Range> whole = MinMax(y);
      ASSERT_TRUE(whole.ok() && range.range().has_value()) << where;
      EXPECT_EQ(range.range()->min, whole->min) << where;
      EXPECT_EQ(range.range()->max, whole->max) << where;
    }
  }
}

TEST(ForwardInt8InPlaceTest, Avx512KernelIsTheIntegerConvolution) {
  if (!S8ForwardInPlace(kShapes[0])) GTEST_SKIP() << "needs AVX512-VNNI, uncapped by MUPPET_ISA";
  ExpectExact(/*amx=*/false);
}

TEST(ForwardInt8InPlaceTest, AmxKernelIsTheIntegerConvolution) {
  if (!AmxInt8Active()) {
    GTEST_SKIP() << "needs AMX-INT8 with the OS's permission, and MUPPET_ISA unset";
  }
  ExpectExact(/*amx=*/true);
}

}  // namespace
}  // namespace muppet::kernels::internal
