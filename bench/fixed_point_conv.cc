// Fixed-point convolution (kernels/cpu/fixed_point_conv.h: quantise, im2col of codes, integer
// GEMM) against oneDNN's FP32 convolution on channels-last tensors, for resnet20's convolutions
// at batch 128 on 28x28 inputs: forward, backward-data and backward-weights, each with its
// quantisation included. One JSON line per (shape, pass, word length) with the ratio
// fp32_seconds / fixed_point_seconds taken in the same run (> 1 means fixed point is faster).
#include <omp.h>

#include <random>
#include <vector>

#include "bench/harness.h"
#include "kernels/cpu/fixed_point_conv.h"
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
  dnnl::convolution_backward_data::primitive_desc bwd_data({alg, src, weights, dst, strides, pad, pad},
                                                           engine, fwd);
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
            bd.execute(stream, {{DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_WEIGHTS, w2}, {DNNL_ARG_DIFF_SRC, ds}});
            stream.wait();
          }),
          BestSeconds([&] {
            bw.execute(stream, {{DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_SRC, s}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
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

void Measure(const ConvGeometry& g) {
  const Fp32Times fp32 = Fp32Conv(g);
  const auto x = Random(g.n * g.h * g.w * g.c), w = Random(g.o * g.kernel * g.kernel * g.c);
  const auto dy = Random(g.n * g.out_h() * g.out_w() * g.o);
  std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(g.o);
  for (int wl : {8, 12, 16}) {
    const kernels::FixedPointOptions o{.word_length = wl, .seed = 1};
    const double times[3] = {
        BestSeconds([&] { (void)kernels::ConvForward(o, g, x, w, {}, y); }, 3),
        BestSeconds([&] { (void)kernels::ConvBackwardData(o, g, dy, w, dx); }, 3),
        BestSeconds([&] { (void)kernels::ConvBackwardWeights(o, g, dy, x, dw, db); }, 3)};
    const double fp32_times[3] = {fp32.forward, fp32.backward_data, fp32.backward_weights};
    const char* passes[3] = {"forward", "backward_data", "backward_weights"};
    for (int p = 0; p < 3; ++p) {
      JsonLine()
          .Add("bench", "fixed_point_conv")
          .Add("pass", passes[p])
          .Add("n", static_cast<long long>(g.n)).Add("c", static_cast<long long>(g.c))
          .Add("hw", static_cast<long long>(g.h)).Add("o", static_cast<long long>(g.o))
          .Add("kernel", static_cast<long long>(g.kernel)).Add("stride", static_cast<long long>(g.stride))
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
  using muppet::kernels::ConvGeometry;
  for (const ConvGeometry& g :
       {ConvGeometry{.n = 128, .h = 28, .w = 28, .c = 16, .o = 16, .kernel = 3, .padding = 1},
        ConvGeometry{.n = 128, .h = 14, .w = 14, .c = 32, .o = 32, .kernel = 3, .padding = 1},
        ConvGeometry{.n = 128, .h = 7, .w = 7, .c = 64, .o = 64, .kernel = 3, .padding = 1}}) {
    muppet::bench::Measure(g);
  }
}
