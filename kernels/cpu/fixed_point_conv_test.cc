#include "kernels/cpu/fixed_point_conv.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/fixed_point_test_util.h"
#include "kernels/cpu/gemm_s16.h"

namespace muppet::kernels {
namespace {

using testing::DequantizedOperand;
using testing::ForEachTerm;
using ::testing::HasSubstr;
using testing::RandomFloats;

class FixedPointConvTest : public ::testing::TestWithParam<std::tuple<int, ConvGeometry>> {
 protected:
  FixedPointOptions Options() const {
    return {.word_length = std::get<0>(GetParam()), .seed = 3, .step = 2};
  }
  const ConvGeometry& G() const { return std::get<1>(GetParam()); }
  int64_t XSize() const { return G().n * G().h * G().w * G().c; }
  int64_t YSize() const { return G().n * G().out_h() * G().out_w() * G().o; }
  int64_t WSize() const { return G().o * G().kernel * G().kernel * G().c; }
};

// Every output is one integer dot product, rounded once, where the reduction is one integer sum
// (8 bits; 9-16 bits while K fits one block of the int16 GEMM): exactly the FP64 result rounded.
// Longer 15-16-bit reductions add blocks of 16 pairs in FP32 (gemm_s16.h): within FP32 rounding.
TEST_P(FixedPointConvTest, ForwardIsTheConvolutionOfTheQuantisedOperands) {
  const auto x = RandomFloats(XSize(), 1), w = RandomFloats(WSize(), 2), b = RandomFloats(G().o, 3);
  std::vector<float> y(YSize());
  ASSERT_TRUE(ConvForward(Options(), G(), x, w, b, y).ok());
  const auto qx = DequantizedOperand(x, Options(), Operand::kInput),
             qw = DequantizedOperand(w, Options(), Operand::kWeights);
  std::vector<double> expected(YSize(), 0.0), magnitude(YSize(), 0.0);
  ForEachTerm(G(), [&](int64_t xi, int64_t yi, int64_t wi) {
    expected[yi] += qx[xi] * qw[wi];
    magnitude[yi] += std::abs(qx[xi] * qw[wi]);
  });
  const int wl = Options().word_length;
  const bool one_sum = wl <= 8 || WSize() / G().o <= 2 * GemmS16BlockPairs(wl);
  for (int64_t i = 0; i < YSize(); ++i) {
    if (one_sum) {
      ASSERT_EQ(y[i], static_cast<float>(expected[i]) + b[i % G().o]) << i;
    } else {
      ASSERT_NEAR(y[i], expected[i] + b[i % G().o], 1e-6 * (magnitude[i] + std::abs(b[i % G().o])))
          << i;
    }
  }
}

// Backward passes add several rounded partial results: equal within FP32 rounding of the sum of
// the terms' magnitudes.
TEST_P(FixedPointConvTest, BackwardDataIsTheTransposedConvolution) {
  const auto dy = RandomFloats(YSize(), 4), w = RandomFloats(WSize(), 5);
  std::vector<float> dx(XSize());
  ASSERT_TRUE(ConvBackwardData(Options(), G(), dy, w, dx).ok());
  const auto qdy = DequantizedOperand(dy, Options(), Operand::kGradient),
             qw = DequantizedOperand(w, Options(), Operand::kWeights);
  std::vector<double> expected(XSize(), 0.0), magnitude(XSize(), 0.0);
  ForEachTerm(G(), [&](int64_t xi, int64_t yi, int64_t wi) {
    expected[xi] += qdy[yi] * qw[wi];
    magnitude[xi] += std::abs(qdy[yi] * qw[wi]);
  });
  for (int64_t i = 0; i < XSize(); ++i) {
    ASSERT_NEAR(dx[i], expected[i], 1e-6 * magnitude[i] + 1e-30) << i;
  }
}

TEST_P(FixedPointConvTest, BackwardWeightsIsTheCorrelation) {
  const auto dy = RandomFloats(YSize(), 6), x = RandomFloats(XSize(), 7);
  std::vector<float> dw(WSize()), db(G().o);
  ASSERT_TRUE(ConvBackwardWeights(Options(), G(), dy, x, dw, db).ok());
  const auto qdy = DequantizedOperand(dy, Options(), Operand::kGradient),
             qx = DequantizedOperand(x, Options(), Operand::kInput);
  std::vector<double> expected(WSize(), 0.0), magnitude(WSize(), 0.0), bias(G().o, 0.0);
  ForEachTerm(G(), [&](int64_t xi, int64_t yi, int64_t wi) {
    expected[wi] += qdy[yi] * qx[xi];
    magnitude[wi] += std::abs(qdy[yi] * qx[xi]);
  });
  for (int64_t i = 0; i < YSize(); ++i) bias[i % G().o] += qdy[i];
  for (int64_t i = 0; i < WSize(); ++i) {
    ASSERT_NEAR(dw[i], expected[i], 1e-6 * magnitude[i] + 1e-30) << i;
  }
  for (int64_t j = 0; j < G().o; ++j) EXPECT_FLOAT_EQ(db[j], static_cast<float>(bias[j]));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FixedPointConvTest,
    ::testing::Combine(
        ::testing::Values(8, 12, 16),
        ::testing::Values(
            ConvGeometry{.n = 2, .h = 5, .w = 6, .c = 3, .o = 4, .kernel = 3, .padding = 1},
            ConvGeometry{.n = 1, .h = 7, .w = 7, .c = 2, .o = 5, .kernel = 3, .stride = 2},
            ConvGeometry{.n = 3, .h = 4, .w = 4, .c = 5, .o = 3, .kernel = 1, .stride = 2},
            ConvGeometry{.n = 2, .h = 6, .w = 5, .c = 1, .o = 6, .kernel = 5, .padding = 2},
            // Enough pixels per channel for the blocked 9-16-bit routes (several blocks).
            ConvGeometry{.n = 2, .h = 24, .w = 23, .c = 2, .o = 3, .kernel = 3, .padding = 1},
            // Channels in multiples of 16: the AVX2 int8 route's implicit GEMM, forward and (with
            // O = 16) backward-data, padded and strided.
            ConvGeometry{.n = 2, .h = 5, .w = 6, .c = 16, .o = 16, .kernel = 3, .padding = 1},
            ConvGeometry{
                .n = 1, .h = 7, .w = 7, .c = 32, .o = 3, .kernel = 3, .stride = 2, .padding = 1})));

// Codes of only -128 and 127 (every pair sum a saturating int8 route would get wrong, the -128s
// the AVX2 route corrects, and the codes the in-place VNNI backward-weights shifts by 128), of
// -127 and 127 (no correction: the AVX2 route reads inner panels in place), and non-negative
// ones (its sign-free tiles), in every 8-bit pass, on geometries that reach its implicit GEMM:
// exactly the integer results.
TEST(FixedPointConvCodesTest, ExtremeCodesAreExactInEveryPass) {
  std::mt19937 rng(9);
  const auto codes = [&](int64_t n, int kind) {
    Quantized q{.word_length = 8, .exponent = 3};
    q.s8.resize(n);
    for (int8_t& c : q.s8) {
      const bool high = rng() % 2;
      c = kind == 0   ? (high ? int8_t{127} : int8_t{-128})
          : kind == 1 ? (high ? int8_t{127} : int8_t{-127})
                      : (high ? int8_t{127} : static_cast<int8_t>(rng() % 128));
    }
    return q;
  };
  for (int kind = 0; kind < 3; ++kind) {
    for (const ConvGeometry& g :
         {ConvGeometry{.n = 2, .h = 5, .w = 6, .c = 16, .o = 16, .kernel = 3, .padding = 1},
          ConvGeometry{.n = 1, .h = 10, .w = 10, .c = 16, .o = 16, .kernel = 3, .padding = 1},
          ConvGeometry{.n = 2, .h = 6, .w = 6, .c = 16, .o = 16, .kernel = 3},
          ConvGeometry{.n = 1, .h = 7, .w = 7, .c = 32, .o = 5, .kernel = 3, .stride = 2},
          // Backward-weights in several blocks, a last block of a pixel count that is not a
          // multiple of 4, output channels not a multiple of 8 or 16 (the in-place VNNI kernel).
          ConvGeometry{.n = 3, .h = 29, .w = 29, .c = 16, .o = 21, .kernel = 3, .padding = 1},
          ConvGeometry{.n = 1, .h = 15, .w = 13, .c = 48, .o = 9, .kernel = 3, .padding = 1},
          // Taps that only ever read padding (skipped by the in-place kernels).
          ConvGeometry{.n = 3, .h = 1, .w = 1, .c = 32, .o = 9, .kernel = 3, .padding = 1},
          ConvGeometry{.n = 2, .h = 2, .w = 3, .c = 16, .o = 16, .kernel = 5, .padding = 2},
          // Enough blocks that whole blocks go to each thread rather than each spread over all.
          ConvGeometry{.n = 4, .h = 64, .w = 64, .c = 16, .o = 4, .kernel = 3, .padding = 1},
          // The in-place VNNI forward kernel: channels in quads but not in 16s; 1, 2 and 4 units
          // of 16 outputs a tile, the last unit partial or all padding; a last tile of one pixel.
          ConvGeometry{.n = 2, .h = 9, .w = 7, .c = 12, .o = 40, .kernel = 3, .padding = 1},
          ConvGeometry{.n = 1, .h = 5, .w = 5, .c = 4, .o = 64, .kernel = 3, .padding = 1},
          ConvGeometry{
              .n = 2, .h = 8, .w = 8, .c = 8, .o = 27, .kernel = 3, .stride = 2, .padding = 1},
          ConvGeometry{.n = 3, .h = 6, .w = 5, .c = 20, .o = 7, .kernel = 1}}) {
      const int64_t xs = g.n * g.h * g.w * g.c, ys = g.n * g.out_h() * g.out_w() * g.o,
                    ws = g.o * g.kernel * g.kernel * g.c;
      const Quantized qx = codes(xs, kind), qw = codes(ws, kind % 2), qdy = codes(ys, kind % 2);
      std::vector<float> y(ys), dx(xs), dw(ws), db(g.o);
      ASSERT_TRUE(ConvForward(g, qx, qw, {}, y).ok());
      ASSERT_TRUE(ConvBackwardData(g, qdy, qw, dx).ok());
      ASSERT_TRUE(ConvBackwardWeights(g, qdy, qx, dw, db).ok());
      std::vector<int64_t> ey(ys, 0), edx(xs, 0), edw(ws, 0);
      ForEachTerm(g, [&](int64_t xi, int64_t yi, int64_t wi) {
        ey[yi] += int64_t{qx.s8[xi]} * qw.s8[wi];
        edx[xi] += int64_t{qdy.s8[yi]} * qw.s8[wi];
        edw[wi] += int64_t{qdy.s8[yi]} * qx.s8[xi];
      });
      // Each exact integer sum rounded once to FP32 (forward and backward-data sums are below
      // 2^24, so held exactly); the scale is 2^-6.
      const auto rounded = [](int64_t sum) { return static_cast<float>(std::ldexp(sum, -6)); };
      for (int64_t i = 0; i < ys; ++i) ASSERT_EQ(y[i], rounded(ey[i])) << "forward " << i;
      for (int64_t i = 0; i < xs; ++i) ASSERT_EQ(dx[i], rounded(edx[i])) << "data " << i;
      for (int64_t i = 0; i < ws; ++i) ASSERT_EQ(dw[i], rounded(edw[i])) << "weights " << i;
    }
  }
}

// Random 9-16-bit codes, a quarter of them at the extremes (so that 15-16-bit sums saturate).
Quantized RandomCodes16(int64_t n, int word_length, std::mt19937& rng) {
  Quantized q{.word_length = word_length, .exponent = 11};
  const int top = 1 << (word_length - 1);
  std::uniform_int_distribution<int> code(-top, top - 1);
  q.s16.resize(n);
  for (int16_t& c : q.s16) {
    const int r = static_cast<int>(rng() % 8);
    c = static_cast<int16_t>(r == 0 ? -top : r == 1 ? top - 1 : code(rng));
  }
  return q;
}

// A geometry for each route of the 8 and 12-bit passes: at 8 bits on AVX512-VNNI the in-place
// forward kernel (every one) and oneDNN's direct backward-data (the strided and the 1x1, whose
// transposed channels are not quads); the blocked implicit GEMMs (the first, large enough to
// split across threads) and im2col (stride 2, 1x1) elsewhere.
constexpr ConvGeometry kEachRoute[] = {
    {.n = 4, .h = 16, .w = 16, .c = 16, .o = 16, .kernel = 3, .padding = 1},
    {.n = 1, .h = 7, .w = 7, .c = 32, .o = 5, .kernel = 3, .stride = 2},
    {.n = 2, .h = 4, .w = 4, .c = 8, .o = 3, .kernel = 1}};

// The element counts of x, y and w.
struct Sizes {
  int64_t x, y, w;
};
Sizes SizesOf(const ConvGeometry& g) {
  return {g.n * g.h * g.w * g.c, g.n * g.out_h() * g.out_w() * g.o,
          g.o * g.kernel * g.kernel * g.c};
}

// RandomCodes16's codes, as int8 up to 8 bits.
Quantized RandomCodes(int64_t n, int word_length, std::mt19937& rng) {
  Quantized q = RandomCodes16(n, word_length, rng);
  if (word_length <= 8) {
    q.s8.assign(q.s16.begin(), q.s16.end());
    q.s16.clear();
  }
  return q;
}

// Backward-data with an addend (another path's gradient of the same input) returns exactly the
// transposed convolution plus the addend, on each route: oneDNN's direct 8-bit one, the blocked
// implicit GEMMs, and im2col (stride 2); an addend of the wrong size is refused by name.
TEST(FixedPointConvCodesTest, BackwardDataAddsItsAddendExactly) {
  std::mt19937 rng(21);
  for (int word_length : {8, 12}) {
    for (const ConvGeometry& g : kEachRoute) {
      const auto [xs, ys, ws] = SizesOf(g);
      const Quantized qdy = RandomCodes(ys, word_length, rng),
                      qw = RandomCodes(ws, word_length, rng);
      std::vector<float> dx(xs), dx_plus(xs), addend(xs);
      std::normal_distribution<float> normal;
      for (float& a : addend) a = normal(rng);
      ASSERT_TRUE(ConvBackwardData(g, qdy, qw, dx).ok());
      ASSERT_TRUE(ConvBackwardData(g, qdy, qw, dx_plus, addend).ok());
      for (int64_t i = 0; i < xs; ++i) {
        ASSERT_EQ(dx_plus[i], dx[i] + addend[i]) << word_length << "-bit, element " << i;
      }
      const std::vector<float> short_addend(xs - 1);
      const absl::Status wrong = ConvBackwardData(g, qdy, qw, dx_plus, short_addend).status();
      EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(wrong.message(), HasSubstr("addend has"));
    }
  }
}

// The output's range gathered in the forward pass's own pass over it is MinMax's of the output,
// with or without a bias, on each route (the in-place 8-bit kernel or oneDNN's direct one, the
// blocked implicit GEMMs, im2col); a route that makes no such pass leaves the range as it was.
// With a bias every route makes one.
TEST(FixedPointConvCodesTest, ForwardGathersTheRangeOfItsOutput) {
  std::mt19937 rng(23);
  for (int word_length : {8, 12}) {
    for (const ConvGeometry& g : kEachRoute) {
      const auto [xs, ys, ws] = SizesOf(g);
      const Quantized qx = RandomCodes(xs, word_length, rng),
                      qw = RandomCodes(ws, word_length, rng);
      const std::vector<float> bias = RandomFloats(g.o, 29);
      for (bool with_bias : {false, true}) {
        std::vector<float> y(ys);
        RangeScan range;
        ASSERT_TRUE(
            ConvForward(g, qx, qw, with_bias ? bias : std::vector<float>{}, y, &range).ok());
        const absl::StatusOr<Range> expected = MinMax(y);
        ASSERT_TRUE(expected.ok());
        const std::string where =
            absl::StrCat(word_length, "-bit, ", g.c, " channels, bias ", with_bias);
        if (with_bias) {
          ASSERT_TRUE(range.range().has_value()) << where;
        }
        if (!range.range().has_value()) continue;
        EXPECT_EQ(range.range()->min, expected->min) << where;
        EXPECT_EQ(range.range()->max, expected->max) << where;
      }
    }
  }
}

// The im2col matrix of codes x, by the definition.
std::vector<int16_t> Columns(const ConvGeometry& g, const Quantized& qx) {
  const int64_t k = g.kernel * g.kernel * g.c;
  std::vector<int16_t> cols(g.n * g.out_h() * g.out_w() * k, 0);
  ForEachTerm(g, [&](int64_t xi, int64_t yi, int64_t wi) {
    const int64_t row = yi / g.o, column = wi % k;
    cols[row * k + column] = qx.s16[xi];
  });
  return cols;
}

// The 9-16-bit convolutions on codes, bit for bit and saturation for saturation, against the
// int16 GEMM's reference on the unfolded matrices: forward as one GEMM, backward-weights in
// chunks of kConvWeightsChunkPixels pixels (transposed, k running over pixel pairs), on geometries
// that reach the in-place routes (even channels; 16k channels for backward-weights).
TEST(FixedPointConvCodesTest, Int16PassesAreExactlyTheGemmReference) {
  std::mt19937 rng(11);
  for (int wl : {12, 14, 16}) {
    for (const ConvGeometry& g :
         {ConvGeometry{.n = 2, .h = 24, .w = 24, .c = 16, .o = 4, .kernel = 3, .padding = 1},
          ConvGeometry{.n = 3, .h = 7, .w = 7, .c = 32, .o = 18, .kernel = 3, .padding = 1},
          ConvGeometry{.n = 2, .h = 9, .w = 8, .c = 16, .o = 7, .kernel = 3, .stride = 2},
          ConvGeometry{.n = 1, .h = 6, .w = 6, .c = 6, .o = 5, .kernel = 5, .padding = 2},
          // Inputs smaller than the kernel's reach: taps that only ever read padding are skipped.
          ConvGeometry{.n = 4, .h = 1, .w = 1, .c = 32, .o = 20, .kernel = 3, .padding = 1},
          ConvGeometry{.n = 2, .h = 2, .w = 3, .c = 16, .o = 5, .kernel = 5, .padding = 2},
          // Enough chunks that whole chunks go to each thread rather than each spread over all.
          ConvGeometry{.n = 9, .h = 32, .w = 32, .c = 16, .o = 4, .kernel = 3, .padding = 1}}) {
      const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
      const Quantized qx = RandomCodes16(g.n * g.h * g.w * g.c, wl, rng);
      const Quantized qw = RandomCodes16(g.o * k, wl, rng);
      const Quantized qdy = RandomCodes16(rows * g.o, wl, rng);
      const std::vector<int16_t> cols = Columns(g, qx);
      const float scale = std::ldexp(1.0f, -22);
      const int64_t block_pairs = GemmS16BlockPairs(wl);
      std::vector<float> y(rows * g.o), expected_y(rows * g.o);
      const int64_t y_saturated =
          GemmS16Reference({.m = rows, .n = g.o, .k = k, .b_transposed = true}, cols.data(),
                           qw.s16.data(), scale, expected_y.data(), block_pairs);
      absl::StatusOr<int64_t> saturated = ConvForward(g, qx, qw, {}, y);
      ASSERT_TRUE(saturated.ok()) << saturated.status();
      EXPECT_EQ(*saturated, y_saturated) << wl << " bits, C=" << g.c;
      for (int64_t i = 0; i < rows * g.o; ++i) ASSERT_EQ(y[i], expected_y[i]) << "forward " << i;
      if (g.c % 16) continue;
      std::vector<float> dw(g.o * k), db(g.o), expected_dw(g.o * k, 0.0f), chunk(k * g.o);
      int64_t dw_saturated = 0;
      for (int64_t begin = 0; begin < rows; begin += kConvWeightsChunkPixels) {
        const int64_t n = std::min(kConvWeightsChunkPixels, rows - begin);
        dw_saturated += GemmS16Reference({.m = k, .n = g.o, .k = n, .a_transposed = true},
                                         cols.data() + begin * k, qdy.s16.data() + begin * g.o,
                                         scale, chunk.data(), block_pairs);
        for (int64_t j = 0; j < k; ++j) {
          for (int64_t o = 0; o < g.o; ++o) expected_dw[o * k + j] += chunk[j * g.o + o];
        }
      }
      saturated = ConvBackwardWeights(g, qdy, qx, dw, db);
      ASSERT_TRUE(saturated.ok()) << saturated.status();
      EXPECT_EQ(*saturated, dw_saturated) << wl << " bits, C=" << g.c;
      for (int64_t i = 0; i < g.o * k; ++i) ASSERT_EQ(dw[i], expected_dw[i]) << "weights " << i;
    }
  }
}

TEST(FixedPointConvErrorsTest, BadGeometryAndSizesAreNamed) {
  std::vector<float> x(2 * 4 * 4 * 3, 1.0f), w(5 * 3 * 3 * 3, 1.0f), y(2 * 4 * 4 * 5);
  ConvGeometry g{.n = 2, .h = 4, .w = 4, .c = 3, .o = 5, .kernel = 3, .padding = 1};
  EXPECT_TRUE(ConvForward({}, g, x, w, {}, y).ok());
  g.kernel = 9;
  EXPECT_THAT(ConvForward({}, g, x, w, {}, y).status().message(),
              HasSubstr("invalid convolution: input 2x4x4x3, 5 outputs, kernel 9"));
  g.kernel = 3;
  w.pop_back();
  EXPECT_THAT(ConvForward({}, g, x, w, {}, y).status().message(),
              HasSubstr("w has 134 (expected 135)"));
}

}  // namespace
}  // namespace muppet::kernels
