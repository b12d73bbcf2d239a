#include "kernels/cpu/fixed_point_conv.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/conv_blocked.h"
#include "kernels/cpu/conv_int8.h"
#include "kernels/cpu/fixed_point_internal.h"
#include "kernels/cpu/gemm_s8.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/scratch.h"

namespace muppet::kernels {
namespace {

using internal::CheckBiasSize;
using internal::CheckCodes;
using internal::CodesView;
using internal::Multiply;
using internal::OnQuantizedOperands;
using internal::View;
// The routes (conv_int8.h, conv_blocked.h) and the lowering (im2col.h).
using internal::BackwardWeightsInt16;
using internal::BackwardWeightsInt8;
using internal::Col2Im;
using internal::DeconvRightPadding;
using internal::DirectInt8Run;
using internal::FlippedWeights;
using internal::ForwardBlocked;
using internal::ForwardInt8InPlace;
using internal::Im2Col;
using internal::Pass;
using internal::PreferBlocks;
using internal::S16Implicit;
using internal::S16WeightsInPlace;
using internal::S8ForwardInPlace;
using internal::TransposedGeometry;

absl::Status CheckGeometry(const ConvGeometry& g) {
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.c < 1 || g.o < 1 || g.kernel < 1 || g.stride < 1 ||
      g.padding < 0 || g.out_h() < 1 || g.out_w() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid convolution: input ", g.n, "x", g.h, "x", g.w, "x", g.c, ", ", g.o,
        " outputs, kernel ", g.kernel, ", stride ", g.stride, ", padding ", g.padding));
  }
  return absl::OkStatus();
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

absl::StatusOr<int64_t> ConvForward(const ConvGeometry& g, const Quantized& qx, const Quantized& qw,
                                    std::span<const float> bias, std::span<float> y,
                                    RangeScan* y_range) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  if (absl::Status s = CheckCodes(qx, g.n * g.h * g.w * g.c, "x", qw, g.o * k, "w", y, rows * g.o);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckBiasSize(bias, g.o, "bias"); !s.ok()) return s;
  int64_t saturated = 0;
  if (qx.word_length <= 8 && S8ForwardInPlace(g)) {
    // The range from the kernel itself unless adding the bias makes a pass over y anyway.
    ForwardInt8InPlace(g, qx, qw, y.data(), bias.empty() ? y_range : nullptr);
    internal::AddBias(bias, rows, g.o, y, y_range);
    return saturated;
  }
  if (qx.word_length <= 8 && k <= kGemmS8MaxChunk && ActiveInt8Route() == Int8Route::kOneDnnVnni) {
    // oneDNN's direct int8 convolution: 2.6-4x faster than im2col + GEMM (PERFORMANCE.md).
    DirectInt8Run(g, Pass::kForward, qx, qw, y.data());
    internal::ScaleAndAddBias(std::ldexp(1.0f, -(qx.exponent + qw.exponent)), bias, rows, g.o, y,
                              y_range);
    return saturated;
  }
  if (qx.word_length > 8 ? S16Implicit(g) || PreferBlocks(rows, g.o) : k <= kGemmS8MaxChunk) {
    absl::StatusOr<int64_t> blocked = ForwardBlocked(g, qx, qw, y.data());
    if (!blocked.ok()) return blocked.status();
    saturated = *blocked;
  } else {
    // y (rows x O) = cols (rows x K) * W^T, W stored O x K.
    absl::StatusOr<int64_t> gemm = Multiply({.m = rows, .n = g.o, .k = k, .b_transposed = true},
                                            Unfold(g, qx), View(qw), y.data());
    if (!gemm.ok()) return gemm.status();
    saturated = *gemm;
  }
  internal::AddBias(bias, rows, g.o, y, y_range);
  return saturated;
}

absl::StatusOr<int64_t> ConvBackwardData(const ConvGeometry& g, const Quantized& qdy,
                                         const Quantized& qw, std::span<float> dx,
                                         std::span<const float> addend) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  const int64_t oh = g.out_h(), ow = g.out_w(), rows = g.n * oh * ow;
  const int64_t k = g.kernel * g.kernel * g.c;
  if (absl::Status s =
          CheckCodes(qdy, rows * g.o, "dy", qw, g.o * k, "w", dx, g.n * g.h * g.w * g.c);
      !s.ok()) {
    return s;
  }
  if (!addend.empty() && addend.size() != dx.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("addend has ", addend.size(), " elements, dx ", dx.size()));
  }
  if (qdy.word_length <= 8 && g.stride == 1 && g.padding <= g.kernel - 1 &&
      S8ForwardInPlace(TransposedGeometry(g))) {
    // The transposed convolution as a forward one, read in place, the addend added as it stores.
    ForwardInt8InPlace(TransposedGeometry(g), qdy, FlippedWeights(g, qw), dx.data(), nullptr,
                       addend.empty() ? nullptr : addend.data());
    return 0;
  }
  const bool directly = qdy.word_length <= 8 && ActiveInt8Route() == Int8Route::kOneDnnVnni &&
                        g.o * g.kernel * g.kernel <= kGemmS8MaxChunk &&
                        DeconvRightPadding(g, g.h, oh) >= 0 && DeconvRightPadding(g, g.w, ow) >= 0;
  if (directly) {
    // oneDNN's direct int8 transposed convolution (PERFORMANCE.md).
    DirectInt8Run(g, Pass::kBackwardData, qdy, qw, dx.data());
    internal::ScaleAndAdd(std::ldexp(1.0f, -(qdy.exponent + qw.exponent)), addend, dx);
    return 0;
  }
  absl::StatusOr<int64_t> saturated;
  if (g.stride == 1 && g.padding <= g.kernel - 1 &&
      (qdy.word_length > 8
           ? S16Implicit(TransposedGeometry(g)) || PreferBlocks(g.n * g.h * g.w, g.c)
           : g.o * g.kernel * g.kernel <= kGemmS8MaxChunk)) {
    // The transposed convolution as a forward one: no column matrix of K floats per pixel.
    saturated = ForwardBlocked(TransposedGeometry(g), qdy, FlippedWeights(g, qw), dx.data());
  } else {
    // dcols (rows x K) = dY (rows x O) * W (O x K), then folded back (col2im) into dx.
    std::span<float> dcols = Scratch<float>(ScratchSlot::kColumnGradients, rows * k);
    saturated = Multiply({.m = rows, .n = k, .k = g.o}, View(qdy), View(qw), dcols.data());
    if (saturated.ok()) Col2Im(g, dcols.data(), dx);
  }
  if (saturated.ok() && !addend.empty())
    internal::ScaleAndAdd(1.0f, addend, dx);  // x * 1 is exact.
  return saturated;
}

absl::StatusOr<int64_t> ConvBackwardWeights(const ConvGeometry& g, const Quantized& qdy,
                                            const Quantized& qx, std::span<float> dw,
                                            std::span<float> db) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  if (absl::Status s =
          CheckCodes(qdy, rows * g.o, "dy", qx, g.n * g.h * g.w * g.c, "x", dw, g.o * k);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckBiasSize(db, g.o, "db"); !s.ok()) return s;
  int64_t saturated = 0;
  if (qdy.word_length <= 8) {
    if (absl::Status s = BackwardWeightsInt8(g, qdy, qx, dw.data()); !s.ok()) return s;
  } else if (S16WeightsInPlace(g) || PreferBlocks(rows, g.o)) {
    saturated = BackwardWeightsInt16(g, qdy, qx, dw.data());
  } else {
    // dW (O x K) = dY^T (O x rows) * cols (rows x K); dY is stored rows x O.
    absl::StatusOr<int64_t> gemm = Multiply({.m = g.o, .n = k, .k = rows, .a_transposed = true},
                                            View(qdy), Unfold(g, qx), dw.data());
    if (!gemm.ok()) return gemm.status();
    saturated = *gemm;
  }
  if (!db.empty()) internal::ColumnSums(qdy, rows, g.o, db);
  return saturated;
}

// The FP32 level: quantise each operand on its own stream, then the op on codes.

absl::StatusOr<int64_t> ConvForward(const FixedPointOptions& o, const ConvGeometry& g,
                                    std::span<const float> x, std::span<const float> w,
                                    std::span<const float> bias, std::span<float> y) {
  return OnQuantizedOperands(
      o, x, Operand::kInput, w, Operand::kWeights,
      [&](const Quantized& qx, const Quantized& qw) { return ConvForward(g, qx, qw, bias, y); });
}

absl::StatusOr<int64_t> ConvBackwardData(const FixedPointOptions& o, const ConvGeometry& g,
                                         std::span<const float> dy, std::span<const float> w,
                                         std::span<float> dx) {
  return OnQuantizedOperands(
      o, dy, Operand::kGradient, w, Operand::kWeights,
      [&](const Quantized& qdy, const Quantized& qw) { return ConvBackwardData(g, qdy, qw, dx); });
}

absl::StatusOr<int64_t> ConvBackwardWeights(const FixedPointOptions& o, const ConvGeometry& g,
                                            std::span<const float> dy, std::span<const float> x,
                                            std::span<float> dw, std::span<float> db) {
  return OnQuantizedOperands(o, dy, Operand::kGradient, x, Operand::kInput,
                             [&](const Quantized& qdy, const Quantized& qx) {
                               return ConvBackwardWeights(g, qdy, qx, dw, db);
                             });
}

}  // namespace muppet::kernels
