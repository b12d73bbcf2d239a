#include "kernels/cpu/gemm_s8.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace muppet::kernels {
namespace {

using dnnl::memory;

dnnl::engine& Engine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

// Descriptors of one chunk: A (m x kc), B (kc x n) and C (m x n), as strided views of the full
// row-major matrices, so chunks need no copies.
struct ChunkDescs {
  memory::desc a, b, c;
};

ChunkDescs Describe(const GemmShape& s, int64_t kc) {
  const memory::dims a_strides = s.a_transposed ? memory::dims{1, s.m} : memory::dims{s.k, 1};
  const memory::dims b_strides = s.b_transposed ? memory::dims{1, s.k} : memory::dims{s.n, 1};
  return {memory::desc({s.m, kc}, memory::data_type::s8, a_strides),
          memory::desc({kc, s.n}, memory::data_type::s8, b_strides),
          memory::desc({s.m, s.n}, memory::data_type::f32, memory::dims{s.n, 1})};
}

// One matmul primitive per (shape, chunk length, accumulate), created once and reused. The
// scale is a run-time argument, so one primitive serves every exponent.
const dnnl::matmul& Primitive(const GemmShape& s, int64_t kc, bool accumulate) {
  static std::mutex mu;
  static auto* cache =
      new std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, bool, bool, bool>, dnnl::matmul>;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(s.m, s.n, s.k, kc, s.a_transposed, s.b_transposed, accumulate);
  auto it = cache->find(key);
  if (it != cache->end()) return it->second;
  const ChunkDescs d = Describe(s, kc);
  dnnl::primitive_attr attr;
  attr.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(d.a, d.b, d.c), attr, Engine());
  return cache->emplace(key, dnnl::matmul(pd)).first->second;
}

}  // namespace

absl::Status GemmS8(const GemmShape& s, const int8_t* a, const int8_t* b, float scale, float* c) {
  if (s.m <= 0 || s.n <= 0 || s.k <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GemmS8: dimensions must be positive, got m=", s.m, " n=", s.n, " k=", s.k));
  }
  static dnnl::stream* stream = new dnnl::stream(Engine());
  memory scale_memory({{1}, memory::data_type::f32, memory::format_tag::x}, Engine(), &scale);
  for (int64_t k0 = 0; k0 < s.k; k0 += kGemmS8MaxChunk) {
    const int64_t kc = std::min(kGemmS8MaxChunk, s.k - k0);
    const ChunkDescs d = Describe(s, kc);
    // Column k0 of A and row k0 of B, in their storage orders.
    const int8_t* a_chunk = a + (s.a_transposed ? k0 * s.m : k0);
    const int8_t* b_chunk = b + (s.b_transposed ? k0 : k0 * s.n);
    Primitive(s, kc, /*accumulate=*/k0 > 0)
        .execute(*stream, {{DNNL_ARG_SRC, memory(d.a, Engine(), const_cast<int8_t*>(a_chunk))},
                           {DNNL_ARG_WEIGHTS, memory(d.b, Engine(), const_cast<int8_t*>(b_chunk))},
                           {DNNL_ARG_DST, memory(d.c, Engine(), c)},
                           {DNNL_ARG_ATTR_OUTPUT_SCALES, scale_memory}});
  }
  stream->wait();
  return absl::OkStatus();
}

void GemmS8Reference(const GemmShape& s, const int8_t* a, const int8_t* b, float scale, float* c) {
  const auto at = [&](int64_t i, int64_t p) {
    return s.a_transposed ? a[p * s.m + i] : a[i * s.k + p];
  };
  const auto bt = [&](int64_t p, int64_t j) {
    return s.b_transposed ? b[j * s.k + p] : b[p * s.n + j];
  };
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      float total = 0.0f;
      for (int64_t k0 = 0; k0 < s.k; k0 += kGemmS8MaxChunk) {
        int32_t acc = 0;
        for (int64_t p = k0; p < std::min(s.k, k0 + kGemmS8MaxChunk); ++p)
          acc += at(i, p) * bt(p, j);
        total = k0 == 0 ? static_cast<float>(acc) * scale : total + static_cast<float>(acc) * scale;
      }
      c[i * s.n + j] = total;
    }
  }
}

}  // namespace muppet::kernels
