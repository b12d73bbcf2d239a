// GEMM throughput by data type, as ratios to FP32 taken in one run: oneDNN's FP32 and BF16
// matmuls, muppet's int8 GEMM (kernels/cpu/gemm_s8.h, through oneDNN) and int16 GEMM
// (kernels/cpu/gemm_s16.h, our AVX512-VNNI kernel), at 1024^3 and at the GEMM shapes of every
// resnet20 convolution on 28x28 inputs at batch 128 (forward, backward-data and
// backward-weights, as im2col GEMMs).
//
//   bazel run //bench:gemm -- --json
//
// One JSON object per line: {"m", "n", "k", "dtype", "gops", ...}, then one summary line per
// dtype with the aggregate over the resnet20 shapes (each weighted by the layers that use it).
#include <omp.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "kernels/cpu/gemm_s16.h"
#include "kernels/cpu/gemm_s8.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace muppet::bench {
namespace {

using dnnl::memory;

struct Problem {
  int64_t m, n, k;
  std::string pass;  // "square", "forward", "backward_data", "backward_weights".
  int layers;        // resnet20 convolutions with this shape.
};

// The im2col GEMMs of a convolution whose forward pass is (M = N*OH*OW) x (K = C*KH*KW) times
// K x O: forward M x O x K, backward-data M x K x O, backward-weights O x K x M.
void AddConv(std::vector<Problem>& out, int64_t m, int64_t o, int64_t k, int layers) {
  out.push_back({m, o, k, "forward", layers});
  out.push_back({m, k, o, "backward_data", layers});
  out.push_back({o, k, m, "backward_weights", layers});
}

std::vector<Problem> Problems() {
  std::vector<Problem> p = {{1024, 1024, 1024, "square", 0}};
  const int64_t b = 128;
  AddConv(p, b * 28 * 28, 16, 1 * 9, 1);    // Stem.
  AddConv(p, b * 28 * 28, 16, 16 * 9, 6);   // Stage 1.
  AddConv(p, b * 14 * 14, 32, 16 * 9, 1);   // Stage 2, first (stride 2).
  AddConv(p, b * 14 * 14, 32, 16, 1);       // Stage 2 projection (1x1, stride 2).
  AddConv(p, b * 14 * 14, 32, 32 * 9, 5);   // Stage 2.
  AddConv(p, b * 7 * 7, 64, 32 * 9, 1);     // Stage 3, first.
  AddConv(p, b * 7 * 7, 64, 32, 1);         // Stage 3 projection.
  AddConv(p, b * 7 * 7, 64, 64 * 9, 5);     // Stage 3.
  return p;
}

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Seconds of one oneDNN matmul of type `dt` (f32 or bf16 inputs, f32 output).
double DnnlSeconds(const Problem& p, memory::data_type dt) {
  dnnl::stream stream(Engine());
  const memory::desc a({p.m, p.k}, dt, memory::format_tag::ab);
  const memory::desc b({p.k, p.n}, dt, memory::format_tag::ab);
  const memory::desc c({p.m, p.n}, memory::data_type::f32, memory::format_tag::ab);
  dnnl::matmul mm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), Engine()));
  memory am(a, Engine()), bm(b, Engine()), cm(c, Engine());
  std::memset(am.get_data_handle(), 0x3c, a.get_size());  // Finite values in f32 and bf16.
  std::memset(bm.get_data_handle(), 0x3c, b.get_size());
  return BestSeconds([&] {
    mm.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    stream.wait();
  });
}

double Int8Seconds(const Problem& p) {
  std::mt19937 rng(1);
  std::vector<int8_t> a(p.m * p.k), b(p.k * p.n);
  for (int8_t& x : a) x = static_cast<int8_t>(rng());
  for (int8_t& x : b) x = static_cast<int8_t>(rng());
  std::vector<float> c(p.m * p.n);
  const kernels::GemmShape shape{.m = p.m, .n = p.n, .k = p.k};
  return BestSeconds([&] { (void)kernels::GemmS8(shape, a.data(), b.data(), 1.0f / 256, c.data()); });
}

double Int16Seconds(const Problem& p) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> code(-2048, 2047);  // 12-bit codes: no saturation.
  std::vector<int16_t> a(p.m * p.k), b(p.k * p.n);
  for (int16_t& x : a) x = static_cast<int16_t>(code(rng));
  for (int16_t& x : b) x = static_cast<int16_t>(code(rng));
  std::vector<float> c(p.m * p.n);
  const kernels::GemmShape shape{.m = p.m, .n = p.n, .k = p.k};
  return BestSeconds([&] {
    (void)kernels::GemmS16(shape, a.data(), b.data(), 1.0f / 4096, c.data(),
                           kernels::GemmS16BlockPairs(12));
  });
}

}  // namespace
}  // namespace muppet::bench

int main(int argc, char** argv) {
  using namespace muppet::bench;
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  std::map<std::string, double> ops, seconds;  // Aggregates over the resnet20 shapes.
  for (const Problem& p : Problems()) {
    const double flops = 2.0 * p.m * p.n * p.k;
    const std::map<std::string, double> t = {
        {"fp32", DnnlSeconds(p, dnnl::memory::data_type::f32)},
        {"bf16", DnnlSeconds(p, dnnl::memory::data_type::bf16)},
        {"int8", Int8Seconds(p)},
        {"int16", Int16Seconds(p)}};
    for (const auto& [dtype, s] : t) {
      if (p.layers > 0) {
        ops[dtype] += flops * p.layers;
        seconds[dtype] += s * p.layers;
      }
      if (json) {
        JsonLine()
            .Add("m", static_cast<long long>(p.m)).Add("n", static_cast<long long>(p.n))
            .Add("k", static_cast<long long>(p.k))
            .Add("dtype", dtype).Add("gops", flops / s / 1e9)
            .Add("pass", p.pass).Add("threads", omp_get_max_threads())
            .Add("ratio_to_fp32", t.at("fp32") / s)
            .Print();
      } else {
        std::printf("%-17s m=%-6lld n=%-5lld k=%-6lld %-5s %8.1f Gop/s  %.2fx fp32\n",
                    p.pass.c_str(), static_cast<long long>(p.m), static_cast<long long>(p.n),
                    static_cast<long long>(p.k), dtype.c_str(), flops / s / 1e9,
                    t.at("fp32") / s);
      }
    }
  }
  for (const auto& [dtype, total] : ops) {
    const double gops = total / seconds[dtype] / 1e9;
    const double ratio = seconds["fp32"] / seconds[dtype];
    if (json) {
      JsonLine().Add("summary", "resnet20_aggregate").Add("dtype", dtype).Add("gops", gops)
          .Add("ratio_to_fp32", ratio).Print();
    } else {
      std::printf("resnet20 aggregate %-5s %8.1f Gop/s  %.2fx fp32\n", dtype.c_str(), gops, ratio);
    }
  }
}
