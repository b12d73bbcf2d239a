// Why the engine stores activations channels-last: oneDNN 2.6's FP32 convolution (forward,
// backward-data, backward-weights) on plain NCHW, NHWC and oneDNN's own choice of layout
// (format_tag::any, usually blocked nChw16c), for the convolutions of resnet20 on 28x28 inputs
// at batch 128. Prints one JSON line per shape and layout, with each pass's best time and the
// implementation oneDNN chose.
#include <omp.h>

#include <string>

#include "bench/harness.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace muppet::bench {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

struct Shape {
  int n, c, hw, o, k, s;
};

void Measure(const Shape& sh, tag layout, const char* layout_name) {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const int pad = sh.k / 2, out = (sh.hw + 2 * pad - sh.k) / sh.s + 1;
  const memory::desc src({sh.n, sh.c, sh.hw, sh.hw}, memory::data_type::f32, layout);
  const memory::desc dst({sh.n, sh.o, out, out}, memory::data_type::f32, layout);
  const memory::desc weights({sh.o, sh.c, sh.k, sh.k}, memory::data_type::f32, tag::any);
  const memory::dims strides = {sh.s, sh.s}, padding = {pad, pad};
  const auto alg = dnnl::algorithm::convolution_direct;
  dnnl::convolution_forward::primitive_desc fwd(
      {dnnl::prop_kind::forward_training, alg, src, weights, dst, strides, padding, padding}, engine);
  dnnl::convolution_backward_data::primitive_desc bwd_data(
      {alg, src, weights, dst, strides, padding, padding}, engine, fwd);
  dnnl::convolution_backward_weights::primitive_desc bwd_weights(
      {alg, src, weights, dst, strides, padding, padding}, engine, fwd);
  memory s(fwd.src_desc(), engine), w(fwd.weights_desc(), engine), d(fwd.dst_desc(), engine);
  memory ds(bwd_data.diff_src_desc(), engine), dw(bwd_weights.diff_weights_desc(), engine);
  memory dd(bwd_data.diff_dst_desc(), engine), w2(bwd_data.weights_desc(), engine);
  dnnl::convolution_forward f(fwd);
  dnnl::convolution_backward_data bd(bwd_data);
  dnnl::convolution_backward_weights bw(bwd_weights);
  const double t_fwd = BestSeconds([&] {
    f.execute(stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, d}});
    stream.wait();
  });
  const double t_bd = BestSeconds([&] {
    bd.execute(stream, {{DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_WEIGHTS, w2}, {DNNL_ARG_DIFF_SRC, ds}});
    stream.wait();
  });
  const double t_bw = BestSeconds([&] {
    bw.execute(stream, {{DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_SRC, s}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
    stream.wait();
  });
  const double flops = 2.0 * sh.n * sh.o * out * out * sh.c * sh.k * sh.k;
  JsonLine()
      .Add("bench", "conv_layout")
      .Add("layout", layout_name)
      .Add("n", sh.n).Add("c", sh.c).Add("hw", sh.hw).Add("o", sh.o).Add("k", sh.k).Add("stride", sh.s)
      .Add("threads", omp_get_max_threads())
      .Add("forward_ms", t_fwd * 1e3)
      .Add("backward_data_ms", t_bd * 1e3)
      .Add("backward_weights_ms", t_bw * 1e3)
      .Add("step_gflops", 3 * flops / (t_fwd + t_bd + t_bw) / 1e9)
      .Add("impl", std::string(fwd.impl_info_str()))
      .Print();
}

}  // namespace
}  // namespace muppet::bench

int main() {
  muppet::bench::PrintPlatform("conv_layout");
  using muppet::bench::Shape;
  for (const Shape& sh : {Shape{128, 1, 28, 16, 3, 1}, Shape{128, 16, 28, 16, 3, 1},
                          Shape{128, 16, 28, 32, 3, 2}, Shape{128, 32, 14, 32, 3, 1},
                          Shape{128, 64, 7, 64, 3, 1}}) {
    muppet::bench::Measure(sh, dnnl::memory::format_tag::nchw, "nchw");
    muppet::bench::Measure(sh, dnnl::memory::format_tag::nhwc, "nhwc");
    muppet::bench::Measure(sh, dnnl::memory::format_tag::any, "any");
  }
}
