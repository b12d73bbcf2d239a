// GEMM throughput by data type, as ratios to FP32 taken in one run: oneDNN's FP32 and BF16
// matmuls, muppet's int8 GEMM on each exact route this machine has (kernels/cpu/gemm_s8.h:
// oneDNN where it runs VNNI, muppet's AVX2 kernel, which is also timed with A >= 0 to show what
// multiplying two signed operands costs it) and the int16 GEMM (kernels/cpu/gemm_s16.h),
// at 1024^3 and at the GEMM shapes of every resnet20 convolution on 28x28 inputs at batch 128
// (forward, backward-data and backward-weights, as im2col GEMMs). Integer results are checked
// against the reference loops before they are timed.
//
//   bazel run -c opt //bench:gemm -- --json
//
// One JSON object per line: first the platform, then {"m", "n", "k", "dtype", "gops", ...} per
// shape and data type, then one summary line per data type with the aggregate over the resnet20
// shapes (each weighted by the layers that use it). A data type this CPU cannot run (BF16 without
// AVX-512) is reported once as {"dtype", "supported": false, "reason"}; the rest still runs.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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
  AddConv(p, b * 28 * 28, 16, 1 * 9, 1);   // Stem.
  AddConv(p, b * 28 * 28, 16, 16 * 9, 6);  // Stage 1.
  AddConv(p, b * 14 * 14, 32, 16 * 9, 1);  // Stage 2, first (stride 2).
  AddConv(p, b * 14 * 14, 32, 16, 1);      // Stage 2 projection (1x1, stride 2).
  AddConv(p, b * 14 * 14, 32, 32 * 9, 5);  // Stage 2.
  AddConv(p, b * 7 * 7, 64, 32 * 9, 1);    // Stage 3, first.
  AddConv(p, b * 7 * 7, 64, 32, 1);        // Stage 3 projection.
  AddConv(p, b * 7 * 7, 64, 64 * 9, 5);    // Stage 3.
  return p;
}

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Seconds of one oneDNN matmul of type `dt` (f32 or bf16 inputs, f32 output). Throws
// dnnl::error where this CPU has no implementation for `dt`.
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

// Why oneDNN cannot run `dt` here, or nothing when it can.
std::optional<std::string> DnnlUnsupported(memory::data_type dt) {
  try {
    DnnlSeconds({16, 16, 16, "probe", 0}, dt);
    return std::nullopt;
  } catch (const dnnl::error& e) {
    return absl::StrCat("oneDNN has no implementation on ISA ", OneDnnIsa(), ": ", e.what());
  }
}

template <typename Code>
std::vector<Code> RandomCodes(size_t n, int lo, int hi) {
  std::mt19937 rng(n);
  std::uniform_int_distribution<int> code(lo, hi);
  std::vector<Code> v(n);
  for (Code& x : v) x = static_cast<Code>(code(rng));
  return v;
}

// Checks 64 sampled entries of c against `expected(i, j)`: every integer route must be exact
// before its speed means anything.
void Validate(const Problem& p, const std::vector<float>& c,
              const std::function<float(int64_t, int64_t)>& expected, const std::string& dtype) {
  std::mt19937 rng(7);
  for (int t = 0; t < 64; ++t) {
    const int64_t i = rng() % p.m, j = rng() % p.n;
    if (c[i * p.n + j] != expected(i, j)) {
      Fail(absl::StrCat(dtype, " m=", p.m, " n=", p.n, " k=", p.k, ": C(", i, ",", j,
                        ") = ", c[i * p.n + j], ", expected ", expected(i, j)));
    }
  }
}

// sum over q in [q0, q1) of A(i, q) B(q, j), row-major operands, in int64.
template <typename Code>
int64_t Dot(const Problem& p, const std::vector<Code>& a, const std::vector<Code>& b, int64_t i,
            int64_t j, int64_t q0, int64_t q1) {
  int64_t dot = 0;
  for (int64_t q = q0; q < q1; ++q) dot += int64_t{a[i * p.k + q]} * b[q * p.n + j];
  return dot;
}

// `a_lo` is the smallest A code: -128 for signed codes (gradients, weights), 0 for the codes of
// activations after a ReLU, which the AVX2 kernel multiplies without its sign trick.
double Int8Seconds(const Problem& p, kernels::Int8Route route, int a_lo, const std::string& dtype) {
  const std::vector<int8_t> a = RandomCodes<int8_t>(p.m * p.k, a_lo, 127);
  const std::vector<int8_t> b = RandomCodes<int8_t>(p.k * p.n, -128, 127);
  std::vector<float> c(p.m * p.n);
  const kernels::GemmShape shape{.m = p.m, .n = p.n, .k = p.k};
  const auto run = [&] {
    CheckOk(kernels::GemmS8(shape, a.data(), b.data(), 1.0f / 256, c.data(), route), dtype);
  };
  run();
  Validate(
      p, c,
      [&](int64_t i, int64_t j) { return static_cast<float>(Dot(p, a, b, i, j, 0, p.k)) / 256; },
      dtype);
  return BestSeconds(run);
}

double Int16Seconds(const Problem& p) {
  // 12-bit codes: blocks that cannot saturate, so every sum is exact and checkable.
  const std::vector<int16_t> a = RandomCodes<int16_t>(p.m * p.k, -2048, 2047);
  const std::vector<int16_t> b = RandomCodes<int16_t>(p.k * p.n, -2048, 2047);
  std::vector<float> c(p.m * p.n);
  const kernels::GemmShape shape{.m = p.m, .n = p.n, .k = p.k};
  const auto run = [&] {
    CheckOk(kernels::GemmS16(shape, a.data(), b.data(), 1.0f / 4096, c.data(),
                             kernels::GemmS16BlockPairs(12))
                .status(),
            "int16");
  };
  run();
  // The definition: exact int32 sums over blocks of pairs of k, added in FP32 in block order.
  const int64_t block = 2 * kernels::GemmS16BlockPairs(12);
  Validate(
      p, c,
      [&](int64_t i, int64_t j) {
        float total = 0.0f;
        for (int64_t q = 0; q < p.k; q += block) {
          total += static_cast<float>(Dot(p, a, b, i, j, q, std::min(p.k, q + block)));
        }
        return total / 4096;
      },
      "int16");
  return BestSeconds(run);
}

// The data types measured here: name and timer. BF16 only where oneDNN can run it.
std::vector<std::pair<std::string, std::function<double(const Problem&)>>> DataTypes() {
  std::vector<std::pair<std::string, std::function<double(const Problem&)>>> types;
  types.emplace_back("fp32",
                     [](const Problem& p) { return DnnlSeconds(p, memory::data_type::f32); });
  if (const std::optional<std::string> why = DnnlUnsupported(memory::data_type::bf16)) {
    JsonLine()
        .Add("bench", "gemm")
        .Add("dtype", "bf16")
        .Add("supported", false)
        .Add("reason", *why)
        .Print();
  } else {
    types.emplace_back("bf16",
                       [](const Problem& p) { return DnnlSeconds(p, memory::data_type::bf16); });
  }
  for (kernels::Int8Route route : kernels::SupportedInt8Routes()) {
    if (route == kernels::Int8Route::kScalar) continue;  // The reference: minutes at 1024^3.
    const std::string name = absl::StrCat("int8:", kernels::Int8RouteName(route));
    types.emplace_back(
        name, [route, name](const Problem& p) { return Int8Seconds(p, route, -128, name); });
    if (route != kernels::Int8Route::kAvx2) continue;
    // What the sign trick costs: the same kernel with A >= 0, as a forward pass after a ReLU has.
    const std::string unsigned_a = name + ":a>=0";
    types.emplace_back(unsigned_a, [route, unsigned_a](const Problem& p) {
      return Int8Seconds(p, route, 0, unsigned_a);
    });
  }
  if (!kernels::OneDnnInt8IsExact()) {
    JsonLine()
        .Add("bench", "gemm")
        .Add("dtype", "int8:onednn-vnni")
        .Add("supported", false)
        .Add("reason", absl::StrCat("oneDNN runs ", OneDnnIsa(),
                                    " here: without VNNI its int8 pair sums saturate"))
        .Print();
  }
  types.emplace_back("int16", Int16Seconds);
  return types;
}

}  // namespace
}  // namespace muppet::bench

int main(int argc, char** argv) {
  using namespace muppet::bench;
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  PrintPlatform("gemm");
  const auto types = DataTypes();
  std::map<std::string, double> ops, seconds;  // Aggregates over the resnet20 shapes.
  for (const Problem& p : Problems()) {
    const double flops = 2.0 * p.m * p.n * p.k;
    std::map<std::string, double> t;
    for (const auto& [dtype, timer] : types) t[dtype] = timer(p);
    for (const auto& [dtype, s] : t) {
      if (p.layers > 0) {
        ops[dtype] += flops * p.layers;
        seconds[dtype] += s * p.layers;
      }
      if (json) {
        JsonLine()
            .Add("bench", "gemm")
            .Add("m", static_cast<long long>(p.m))
            .Add("n", static_cast<long long>(p.n))
            .Add("k", static_cast<long long>(p.k))
            .Add("dtype", dtype)
            .Add("supported", true)
            .Add("gops", flops / s / 1e9)
            .Add("pass", p.pass)
            .Add("threads", omp_get_max_threads())
            .Add("ratio_to_fp32", t.at("fp32") / s)
            .Print();
      } else {
        std::printf("%-17s m=%-6lld n=%-5lld k=%-6lld %-17s %8.1f Gop/s  %.2fx fp32\n",
                    p.pass.c_str(), static_cast<long long>(p.m), static_cast<long long>(p.n),
                    static_cast<long long>(p.k), dtype.c_str(), flops / s / 1e9, t.at("fp32") / s);
      }
    }
  }
  for (const auto& [dtype, total] : ops) {
    const double gops = total / seconds[dtype] / 1e9;
    const double ratio = seconds["fp32"] / seconds[dtype];
    if (json) {
      JsonLine()
          .Add("bench", "gemm")
          .Add("summary", "resnet20_aggregate")
          .Add("dtype", dtype)
          .Add("gops", gops)
          .Add("ratio_to_fp32", ratio)
          .Print();
    } else {
      std::printf("resnet20 aggregate %-17s %8.1f Gop/s  %.2fx fp32\n", dtype.c_str(), gops, ratio);
    }
  }
}
