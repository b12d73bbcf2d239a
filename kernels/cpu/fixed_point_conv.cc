#include "kernels/cpu/fixed_point_conv.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/fixed_point_internal.h"
#include "kernels/cpu/gemm_s8.h"
#include "kernels/cpu/scratch.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace muppet::kernels {
namespace {

using internal::CheckBiasSize;
using internal::CheckSizes;
using internal::CodesView;
using internal::kGradient;
using internal::kInput;
using internal::kWeights;
using internal::Multiply;
using internal::QuantizeOperand;
using internal::View;

dnnl::engine& DnnlEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

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

// One oneDNN int8 convolution per geometry and output exponent, created once: nhwc s8 codes in,
// FP32 out scaled by 2^-(sx + sw). oneDNN 2.6 takes no run-time output scale for int8
// convolutions, so the scale is part of the key; a layer's exponents move slowly, so it sees a
// handful of them. Weights are reordered from their plain ohwi codes into the layout the
// primitive prefers on every call (they change every step; they are small).
struct DirectInt8 {
  dnnl::convolution_forward forward;
  dnnl::memory::desc src, weights_plain, weights, dst;
};

const DirectInt8& DirectInt8For(const ConvGeometry& g, int scale_exponent) {
  using dnnl::memory;
  static std::mutex mu;
  static auto* cache = new std::map<std::array<int64_t, 9>, DirectInt8>;
  const std::array<int64_t, 9> key = {g.n,      g.h,      g.w,       g.c,           g.o,
                                      g.kernel, g.stride, g.padding, scale_exponent};
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache->find(key); it != cache->end()) return it->second;
  const memory::desc src({g.n, g.c, g.h, g.w}, memory::data_type::s8, memory::format_tag::nhwc);
  const memory::desc dst({g.n, g.o, g.out_h(), g.out_w()}, memory::data_type::f32,
                         memory::format_tag::nhwc);
  const memory::dims wdims = {g.o, g.c, g.kernel, g.kernel};
  const memory::desc weights_any(wdims, memory::data_type::s8, memory::format_tag::any);
  dnnl::primitive_attr attr;
  attr.set_output_scales(0, {std::ldexp(1.0f, -scale_exponent)});
  const memory::dims strides = {g.stride, g.stride}, pad = {g.padding, g.padding};
  dnnl::convolution_forward::primitive_desc pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                      dnnl::algorithm::convolution_direct, src, weights_any, dst,
                                      strides, pad, pad),
      attr, DnnlEngine());
  DirectInt8 d{dnnl::convolution_forward(pd), src,
               memory::desc(wdims, memory::data_type::s8, memory::format_tag::ohwi),
               pd.weights_desc(), dst};
  return cache->emplace(key, std::move(d)).first->second;
}

// y = 2^-(sx + sw) * conv(codes x, codes w), exact integer accumulation (K = C*KH*KW products of
// at most 2^14 each fit int32 while K <= kGemmS8MaxChunk, which the caller checks).
void DirectInt8Forward(const ConvGeometry& g, const Quantized& qx, const Quantized& qw, float* y) {
  using dnnl::memory;
  const DirectInt8& d = DirectInt8For(g, qx.exponent + qw.exponent);
  thread_local dnnl::stream stream(DnnlEngine());
  const memory plain(d.weights_plain, DnnlEngine(), const_cast<int8_t*>(qw.s8.data()));
  memory weights = plain;
  if (d.weights != d.weights_plain) {
    weights = memory(d.weights, DnnlEngine());
    dnnl::reorder(plain, weights).execute(stream, const_cast<memory&>(plain), weights);
  }
  d.forward.execute(stream,
                    {{DNNL_ARG_SRC, memory(d.src, DnnlEngine(), const_cast<int8_t*>(qx.s8.data()))},
                     {DNNL_ARG_WEIGHTS, weights},
                     {DNNL_ARG_DST, memory(d.dst, DnnlEngine(), y)}});
  stream.wait();
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
  if (absl::Status s = CheckBiasSize(bias, g.o, "bias"); !s.ok()) return s;
  absl::StatusOr<Quantized> qx = QuantizeOperand(o, x, kInput);
  if (!qx.ok()) return qx.status();
  absl::StatusOr<Quantized> qw = QuantizeOperand(o, w, kWeights);
  if (!qw.ok()) return qw.status();
  int64_t saturated = qx->saturated + qw->saturated;
  if (o.word_length <= 8 && k <= kGemmS8MaxChunk) {
    // oneDNN's direct int8 convolution: 2.6-4x faster than im2col + GEMM (PERFORMANCE.md).
    DirectInt8Forward(g, *qx, *qw, y.data());
  } else {
    // y (rows x O) = cols (rows x K) * W^T, W stored O x K.
    absl::StatusOr<int64_t> gemm = Multiply({.m = rows, .n = g.o, .k = k, .b_transposed = true},
                                            Unfold(g, *qx), View(*qw), y.data());
    if (!gemm.ok()) return gemm.status();
    saturated += *gemm;
  }
  internal::AddBias(bias, rows, g.o, y);
  return saturated;
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
  absl::StatusOr<Quantized> qdy = QuantizeOperand(o, dy, kGradient);
  if (!qdy.ok()) return qdy.status();
  absl::StatusOr<Quantized> qw = QuantizeOperand(o, w, kWeights);
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
  if (absl::Status s = CheckBiasSize(db, g.o, "db"); !s.ok()) return s;
  absl::StatusOr<Quantized> qdy = QuantizeOperand(o, dy, kGradient);
  if (!qdy.ok()) return qdy.status();
  absl::StatusOr<Quantized> qx = QuantizeOperand(o, x, kInput);
  if (!qx.ok()) return qx.status();
  // dW (O x K) = dY^T (O x rows) * cols (rows x K); dY is stored rows x O.
  absl::StatusOr<int64_t> saturated = Multiply({.m = g.o, .n = k, .k = rows, .a_transposed = true},
                                               View(*qdy), Unfold(g, *qx), dw.data());
  if (!saturated.ok()) return saturated.status();
  if (!db.empty()) internal::ColumnSums(*qdy, rows, g.o, db);
  return qdy->saturated + qx->saturated + *saturated;
}

}  // namespace muppet::kernels
