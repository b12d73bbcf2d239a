#include "kernels/cpu/fixed_point_conv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/fixed_point_internal.h"
#include "kernels/cpu/scratch.h"

namespace muppet::kernels {
namespace {

using internal::CheckSizes;
using internal::CodesView;
using internal::kGradient;
using internal::kInput;
using internal::kWeights;
using internal::Multiply;
using internal::Stream;
using internal::View;

absl::Status CheckGeometry(const ConvGeometry& g) {
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.c < 1 || g.o < 1 || g.kernel < 1 || g.stride < 1 ||
      g.padding < 0 || g.out_h() < 1 || g.out_w() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid convolution: input ", g.n, "x", g.h, "x", g.w, "x", g.c, ", ", g.o,
        " outputs, kernel ", g.kernel, ", stride ", g.stride, ", padding ", g.padding));
  }
  return absl::OkStatus();
}

// Unfolds channels-last codes into the im2col matrix (N*OH*OW) x (KH*KW*C), row by output
// pixel, columns in (ky, kx, c) order to match the weights' storage. Written into this thread's
// scratch buffer (see scratch.h): it is the largest temporary of a convolution.
template <typename Code>
const Code* Im2Col(const ConvGeometry& g, const std::vector<Code>& x) {
  const int64_t oh = g.out_h(), ow = g.out_w(), k = g.kernel * g.kernel * g.c;
  std::vector<Code>& cols = Scratch<Code>(ScratchSlot::kIm2Col, g.n * oh * ow * k);
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < g.n * oh * ow; ++row) {
    const int64_t n = row / (oh * ow), oy = row / ow % oh, ox = row % ow;
    Code* out = cols.data() + row * k;
    std::fill(out, out + k, Code{0});  // Padding: code 0 is exactly 0.
    for (int64_t ky = 0; ky < g.kernel; ++ky) {
      const int64_t iy = oy * g.stride - g.padding + ky;
      if (iy < 0 || iy >= g.h) continue;
      for (int64_t kx = 0; kx < g.kernel; ++kx) {
        const int64_t ix = ox * g.stride - g.padding + kx;
        if (ix < 0 || ix >= g.w) continue;
        std::memcpy(out + (ky * g.kernel + kx) * g.c, x.data() + ((n * g.h + iy) * g.w + ix) * g.c,
                    g.c * sizeof(Code));
      }
    }
  }
  return cols.data();
}

// The input unfolded as codes, sharing x's exponent.
CodesView Unfold(const ConvGeometry& g, const Quantized& qx) {
  CodesView view = View(qx);
  if (qx.word_length <= 8) {
    view.s8 = Im2Col(g, qx.s8);
  } else {
    view.s16 = Im2Col(g, qx.s16);
  }
  return view;
}

}  // namespace

absl::StatusOr<int64_t> ConvForward(const FixedPointOptions& o, const ConvGeometry& g,
                                    std::span<const float> x, std::span<const float> w,
                                    std::span<const float> bias, std::span<float> y) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  if (absl::Status s = CheckSizes(x, g.n * g.h * g.w * g.c, "x", w, g.o * k, "w", y, rows * g.o);
      !s.ok()) {
    return s;
  }
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != g.o) {
    return absl::InvalidArgumentError(
        absl::StrCat("bias has ", bias.size(), " elements, expected ", g.o));
  }
  absl::StatusOr<Quantized> qx =
      QuantizeTensor(x, o.word_length, o.rounding, o.seed, Stream(o, kInput));
  if (!qx.ok()) return qx.status();
  absl::StatusOr<Quantized> qw =
      QuantizeTensor(w, o.word_length, o.rounding, o.seed, Stream(o, kWeights));
  if (!qw.ok()) return qw.status();
  // y (rows x O) = cols (rows x K) * W^T, W stored O x K.
  absl::StatusOr<int64_t> saturated = Multiply({.m = rows, .n = g.o, .k = k, .b_transposed = true},
                                               Unfold(g, *qx), View(*qw), y.data());
  if (!saturated.ok()) return saturated.status();
  if (!bias.empty()) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < g.o; ++j) y[r * g.o + j] += bias[j];
    }
  }
  return qx->saturated + qw->saturated + *saturated;
}

absl::StatusOr<int64_t> ConvBackwardData(const FixedPointOptions& o, const ConvGeometry& g,
                                         std::span<const float> dy, std::span<const float> w,
                                         std::span<float> dx) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  const int64_t oh = g.out_h(), ow = g.out_w(), rows = g.n * oh * ow;
  const int64_t k = g.kernel * g.kernel * g.c;
  if (absl::Status s = CheckSizes(dy, rows * g.o, "dy", w, g.o * k, "w", dx, g.n * g.h * g.w * g.c);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<Quantized> qdy =
      QuantizeTensor(dy, o.word_length, o.rounding, o.seed, Stream(o, kGradient));
  if (!qdy.ok()) return qdy.status();
  absl::StatusOr<Quantized> qw =
      QuantizeTensor(w, o.word_length, o.rounding, o.seed, Stream(o, kWeights));
  if (!qw.ok()) return qw.status();
  // dcols (rows x K) = dY (rows x O) * W (O x K), then folded back (col2im) into dx.
  std::vector<float>& dcols = Scratch<float>(ScratchSlot::kColumnGradients, rows * k);
  absl::StatusOr<int64_t> saturated =
      Multiply({.m = rows, .n = k, .k = g.o}, View(*qdy), View(*qw), dcols.data());
  if (!saturated.ok()) return saturated.status();
  std::fill(dx.begin(), dx.end(), 0.0f);
  // Parallel over images: no two threads add into the same element, and the order of additions
  // into each element is fixed, so the result does not depend on the thread count.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        const float* in = dcols.data() + ((n * oh + oy) * ow + ox) * k;
        for (int64_t ky = 0; ky < g.kernel; ++ky) {
          const int64_t iy = oy * g.stride - g.padding + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (int64_t kx = 0; kx < g.kernel; ++kx) {
            const int64_t ix = ox * g.stride - g.padding + kx;
            if (ix < 0 || ix >= g.w) continue;
            float* out = dx.data() + ((n * g.h + iy) * g.w + ix) * g.c;
            const float* src = in + (ky * g.kernel + kx) * g.c;
            for (int64_t c = 0; c < g.c; ++c) out[c] += src[c];
          }
        }
      }
    }
  }
  return qdy->saturated + qw->saturated + *saturated;
}

absl::StatusOr<int64_t> ConvBackwardWeights(const FixedPointOptions& o, const ConvGeometry& g,
                                            std::span<const float> dy, std::span<const float> x,
                                            std::span<float> dw, std::span<float> db) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  if (absl::Status s = CheckSizes(dy, rows * g.o, "dy", x, g.n * g.h * g.w * g.c, "x", dw, g.o * k);
      !s.ok()) {
    return s;
  }
  if (!db.empty() && static_cast<int64_t>(db.size()) != g.o) {
    return absl::InvalidArgumentError(
        absl::StrCat("db has ", db.size(), " elements, expected ", g.o));
  }
  absl::StatusOr<Quantized> qdy =
      QuantizeTensor(dy, o.word_length, o.rounding, o.seed, Stream(o, kGradient));
  if (!qdy.ok()) return qdy.status();
  absl::StatusOr<Quantized> qx =
      QuantizeTensor(x, o.word_length, o.rounding, o.seed, Stream(o, kInput));
  if (!qx.ok()) return qx.status();
  // dW (O x K) = dY^T (O x rows) * cols (rows x K); dY is stored rows x O.
  absl::StatusOr<int64_t> saturated = Multiply({.m = g.o, .n = k, .k = rows, .a_transposed = true},
                                               View(*qdy), Unfold(g, *qx), dw.data());
  if (!saturated.ok()) return saturated.status();
  if (!db.empty()) internal::ColumnSums(*qdy, rows, g.o, db);
  return qdy->saturated + qx->saturated + *saturated;
}

}  // namespace muppet::kernels
