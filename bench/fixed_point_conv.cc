// Fixed-point convolution (kernels/cpu/fixed_point_conv.h: quantise, im2col of codes, integer
// GEMM) against oneDNN's FP32 convolution on channels-last tensors, for resnet20's convolutions
// at batch 128 on 28x28 inputs: forward, backward-data and backward-weights, each with its
// quantisation included. One JSON line per (shape, pass, word length) with the ratio
// fp32_seconds / fixed_point_seconds taken in the same run (> 1 means fixed point is faster).
#include "kernels/cpu/fixed_point_conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/harness.h"
#include "kernels/cpu/gemm_s16.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace muppet::bench {
namespace {

using dnnl::memory;
using kernels::ConvGeometry;

struct Fp32Times {
  double forward, backward_data, backward_weights;
};

Fp32Times Fp32Conv(const ConvGeometry& g) {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc src({g.n, g.c, g.h, g.w}, memory::data_type::f32, memory::format_tag::nhwc);
  const memory::desc dst({g.n, g.o, g.out_h(), g.out_w()}, memory::data_type::f32,
                         memory::format_tag::nhwc);
  const memory::desc weights({g.o, g.c, g.kernel, g.kernel}, memory::data_type::f32,
                             memory::format_tag::any);
  const memory::dims strides = {g.stride, g.stride}, pad = {g.padding, g.padding};
  const auto alg = dnnl::algorithm::convolution_direct;
  dnnl::convolution_forward::primitive_desc fwd(
      {dnnl::prop_kind::forward_training, alg, src, weights, dst, strides, pad, pad}, engine);
  dnnl::convolution_backward_data::primitive_desc bwd_data(
      {alg, src, weights, dst, strides, pad, pad}, engine, fwd);
  dnnl::convolution_backward_weights::primitive_desc bwd_weights(
      {alg, src, weights, dst, strides, pad, pad}, engine, fwd);
  memory s(src, engine), d(dst, engine), w(fwd.weights_desc(), engine);
  memory ds(src, engine), dd(dst, engine), w2(bwd_data.weights_desc(), engine);
  memory dw(bwd_weights.diff_weights_desc(), engine);
  dnnl::convolution_forward f(fwd);
  dnnl::convolution_backward_data bd(bwd_data);
  dnnl::convolution_backward_weights bw(bwd_weights);
  return {BestSeconds([&] {
            f.execute(stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, d}});
            stream.wait();
          }),
          BestSeconds([&] {
            bd.execute(stream,
                       {{DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_WEIGHTS, w2}, {DNNL_ARG_DIFF_SRC, ds}});
            stream.wait();
          }),
          BestSeconds([&] {
            bw.execute(stream,
                       {{DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_SRC, s}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
            stream.wait();
          })};
}

std::vector<float> Random(size_t n) {
  std::mt19937 rng(n);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// The codes of x quantised as `operand` of a step of `o` (fixed_point.h's streams).
kernels::Quantized Codes(const std::vector<float>& x, const kernels::FixedPointOptions& o,
                         kernels::Operand operand) {
  absl::StatusOr<kernels::Quantized> q = kernels::QuantizeTensor(
      x, o.word_length, o.rounding, o.seed, o.step * 3 + static_cast<uint64_t>(operand));
  CheckOk(q.status(), "QuantizeTensor");
  return *std::move(q);
}

double Code(const kernels::Quantized& q, int64_t i) {
  return std::ldexp(q.word_length <= 8 ? q.s8[i] : q.s16[i], -q.exponent);
}

// Checks 64 sampled forward outputs against the FP64 convolution of the dequantised operands, so
// that a wrong route is never timed: rounded once, exactly, where the whole sum is one integer
// (8 bits; 9-16 bits while K fits one of the int16 GEMM's blocks), else within FP32 rounding of
// the blocks' partial sums.
void ValidateForward(const ConvGeometry& g, const kernels::FixedPointOptions& o,
                     const std::vector<float>& x, const std::vector<float>& w,
                     const std::vector<float>& y) {
  const kernels::Quantized qx = Codes(x, o, kernels::Operand::kInput);
  const kernels::Quantized qw = Codes(w, o, kernels::Operand::kWeights);
  std::mt19937 rng(5);
  for (int t = 0; t < 64; ++t) {
    const int64_t n = rng() % g.n, oy = rng() % g.out_h(), ox = rng() % g.out_w(), oc = rng() % g.o;
    double sum = 0, magnitude = 0;
    for (int64_t ky = 0; ky < g.kernel; ++ky) {
      for (int64_t kx = 0; kx < g.kernel; ++kx) {
        const int64_t iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx;
        if (iy < 0 || ix < 0 || iy >= g.h || ix >= g.w) continue;
        for (int64_t c = 0; c < g.c; ++c) {
          const double term = Code(qx, ((n * g.h + iy) * g.w + ix) * g.c + c) *
                              Code(qw, ((oc * g.kernel + ky) * g.kernel + kx) * g.c + c);
          sum += term;
          magnitude += std::abs(term);
        }
      }
    }
    const float got = y[((n * g.out_h() + oy) * g.out_w() + ox) * g.o + oc];
    const int64_t k = g.kernel * g.kernel * g.c;
    const bool one_sum = o.word_length <= 8 || k <= 2 * kernels::GemmS16BlockPairs(o.word_length);
    if (one_sum ? got != static_cast<float>(sum) : std::abs(got - sum) > 1e-6 * magnitude) {
      Fail(absl::StrCat("forward at ", o.word_length, " bits, C=", g.c, ": output ", got,
                        ", expected ", static_cast<float>(sum)));
    }
  }
}

void Measure(const ConvGeometry& g) {
  const Fp32Times fp32 = Fp32Conv(g);
  // Every convolution input in resnet20 but the stem's is a ReLU output: non-negative.
  auto x = Random(g.n * g.h * g.w * g.c);
  for (float& v : x) v = std::max(v, 0.0f);
  const auto w = Random(g.o * g.kernel * g.kernel * g.c);
  const auto dy = Random(g.n * g.out_h() * g.out_w() * g.o);
  std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(g.o);
  for (int wl : {8, 12, 16}) {
    const kernels::FixedPointOptions o{.word_length = wl, .seed = 1};
    const auto forward = [&] {
      CheckOk(kernels::ConvForward(o, g, x, w, {}, y).status(), "forward");
    };
    forward();
    ValidateForward(g, o, x, w, y);
    const double times[3] = {
        BestSeconds(forward, 3),
        BestSeconds(
            [&] { CheckOk(kernels::ConvBackwardData(o, g, dy, w, dx).status(), "backward-data"); },
            3),
        BestSeconds(
            [&] {
              CheckOk(kernels::ConvBackwardWeights(o, g, dy, x, dw, db).status(),
                      "backward-weights");
            },
            3)};
    const double fp32_times[3] = {fp32.forward, fp32.backward_data, fp32.backward_weights};
    const char* passes[3] = {"forward", "backward_data", "backward_weights"};
    for (int p = 0; p < 3; ++p) {
      JsonLine()
          .Add("bench", "fixed_point_conv")
          .Add("pass", passes[p])
          .Add("n", static_cast<long long>(g.n))
          .Add("c", static_cast<long long>(g.c))
          .Add("hw", static_cast<long long>(g.h))
          .Add("o", static_cast<long long>(g.o))
          .Add("kernel", static_cast<long long>(g.kernel))
          .Add("stride", static_cast<long long>(g.stride))
          .Add("word_length", wl)
          .Add("threads", omp_get_max_threads())
          .Add("fp32_ms", fp32_times[p] * 1e3)
          .Add("fixed_point_ms", times[p] * 1e3)
          .Add("speedup", fp32_times[p] / times[p])
          .Print();
    }
  }
}

}  // namespace
}  // namespace muppet::bench

int main() {
  muppet::bench::PrintPlatform("fixed_point_conv");
  using muppet::kernels::ConvGeometry;
  for (const ConvGeometry& g :
       {ConvGeometry{.n = 128, .h = 28, .w = 28, .c = 16, .o = 16, .kernel = 3, .padding = 1},
        ConvGeometry{.n = 128, .h = 14, .w = 14, .c = 32, .o = 32, .kernel = 3, .padding = 1},
        ConvGeometry{.n = 128, .h = 7, .w = 7, .c = 64, .o = 64, .kernel = 3, .padding = 1}}) {
    muppet::bench::Measure(g);
  }
}
