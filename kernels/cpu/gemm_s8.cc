#include "kernels/cpu/gemm_s8.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/gemm_s8_internal.h"
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

ChunkDescs Describe(const GemmShape& s, int64_t kc, memory::data_type c_type) {
  const memory::dims a_strides = s.a_transposed ? memory::dims{1, s.m} : memory::dims{s.k, 1};
  const memory::dims b_strides = s.b_transposed ? memory::dims{1, s.k} : memory::dims{s.n, 1};
  return {memory::desc({s.m, kc}, memory::data_type::s8, a_strides),
          memory::desc({kc, s.n}, memory::data_type::s8, b_strides),
          memory::desc({s.m, s.n}, c_type, memory::dims{s.n, 1})};
}

// What a chunk's primitive computes: FP32 scaled by a run-time factor (one primitive serves
// every exponent), FP32 scaled and added to C (the chunks after the first), or exact int32.
enum class Output { kScaled, kScaledSum, kInt32 };

// One matmul primitive per (shape, chunk length, output), created once and reused.
const dnnl::matmul& Primitive(const GemmShape& s, int64_t kc, Output output) {
  static std::mutex mu;
  static auto* cache =
      new std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, bool, bool, Output>,
                   dnnl::matmul>;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(s.m, s.n, s.k, kc, s.a_transposed, s.b_transposed, output);
  auto it = cache->find(key);
  if (it != cache->end()) return it->second;
  const ChunkDescs d =
      Describe(s, kc, output == Output::kInt32 ? memory::data_type::s32 : memory::data_type::f32);
  dnnl::primitive_attr attr;
  if (output != Output::kInt32) attr.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
  if (output == Output::kScaledSum) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(d.a, d.b, d.c), attr, Engine());
  return cache->emplace(key, dnnl::matmul(pd)).first->second;
}

// Runs the chunk of k [k0, k0 + kc) through oneDNN into c (FP32 or int32, by `output`).
void OneDnnChunk(const GemmShape& s, const int8_t* a, const int8_t* b, int64_t k0, int64_t kc,
                 Output output, float scale, void* c) {
  thread_local dnnl::stream stream(Engine());
  const ChunkDescs d =
      Describe(s, kc, output == Output::kInt32 ? memory::data_type::s32 : memory::data_type::f32);
  // Column k0 of A and row k0 of B, in their storage orders.
  const int8_t* a_chunk = a + (s.a_transposed ? k0 * s.m : k0);
  const int8_t* b_chunk = b + (s.b_transposed ? k0 : k0 * s.n);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(d.a, Engine(), const_cast<int8_t*>(a_chunk))},
      {DNNL_ARG_WEIGHTS, memory(d.b, Engine(), const_cast<int8_t*>(b_chunk))},
      {DNNL_ARG_DST, memory(d.c, Engine(), c)}};
  if (output != Output::kInt32) {
    args[DNNL_ARG_ATTR_OUTPUT_SCALES] =
        memory({{1}, memory::data_type::f32, memory::format_tag::x}, Engine(), &scale);
  }
  Primitive(s, kc, output).execute(stream, args);
  stream.wait();
}

// sum over p in [p0, p1) of A(i, p) B(p, j), in int32 (the caller bounds p1 - p0).
int32_t Dot(const GemmShape& s, const int8_t* a, const int8_t* b, int64_t i, int64_t j, int64_t p0,
            int64_t p1) {
  int32_t acc = 0;
  for (int64_t p = p0; p < p1; ++p) acc += int32_t{GemmA(s, a, i, p)} * GemmB(s, b, p, j);
  return acc;
}

absl::Status CheckCall(const char* name, const GemmShape& s, Int8Route route) {
  if (s.m <= 0 || s.n <= 0 || s.k <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": dimensions must be positive, got m=", s.m, " n=", s.n, " k=", s.k));
  }
  if (route == Int8Route::kOneDnnVnni && !OneDnnInt8IsExact()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name,
                     ": oneDNN's int8 kernels run without VNNI here (ISA capped or absent) "
                     "and their int16 pair sums saturate; use another route"));
  }
  if (route == Int8Route::kAvx2 && DetectIsa() < Isa::kAvx2) {
    return absl::FailedPreconditionError(absl::StrCat(name, ": this CPU lacks AVX2"));
  }
  return absl::OkStatus();
}

// oneDNN 2.6.3's AMX int8 kernels are not safe to run here: on an Intel Xeon with AMX, a
// training run that mixes its AMX convolutions and transposed convolutions died with SIGILL on a
// `tilezero` in about one run in three (two data-parallel ranks switching precision): a kernel
// trusted a tile configuration that another kernel had changed. So oneDNN is capped below AMX
// before anything uses it, unless ONEDNN_MAX_CPU_ISA says otherwise; the cap changes nothing on
// a CPU without AMX. Runs at load time because oneDNN fixes its ISA at its first use.
const bool kOneDnnCappedBelowAmx = [] {
  const char* forced = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (forced != nullptr && *forced != '\0') return false;
  if (dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx512_core_bf16) != dnnl_success) {
    std::fprintf(stderr, "muppet: could not cap oneDNN below AMX (dnnl_set_max_cpu_isa failed)\n");
    return false;
  }
  return true;
}();

}  // namespace

bool OneDnnCappedBelowAmx() { return kOneDnnCappedBelowAmx; }

absl::string_view Int8RouteName(Int8Route route) {
  switch (route) {
    case Int8Route::kOneDnnVnni:
      return "onednn-vnni";
    case Int8Route::kAvx2:
      return "muppet-avx2";
    case Int8Route::kScalar:
      return "scalar";
  }
  return "unknown";
}

bool OneDnnInt8IsExact() {
  static const bool exact = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto has = [isa](dnnl_cpu_isa_t bits) { return (isa & bits) == bits; };
    return has(dnnl_cpu_isa_avx512_core_vnni) || has(dnnl_cpu_isa_avx2_vnni);
  }();
  return exact;
}

Int8Route BestInt8Route(Isa isa) {
  if (OneDnnInt8IsExact()) return Int8Route::kOneDnnVnni;
  return isa >= Isa::kAvx2 ? Int8Route::kAvx2 : Int8Route::kScalar;
}

Int8Route ActiveInt8Route() {
  static const Int8Route route = BestInt8Route(ActiveIsa());
  return route;
}

std::vector<Int8Route> SupportedInt8Routes() {
  std::vector<Int8Route> routes;
  if (OneDnnInt8IsExact()) routes.push_back(Int8Route::kOneDnnVnni);
  if (DetectIsa() >= Isa::kAvx2) routes.push_back(Int8Route::kAvx2);
  routes.push_back(Int8Route::kScalar);
  return routes;
}

absl::Status GemmS8(const GemmShape& s, const int8_t* a, const int8_t* b, float scale, float* c,
                    Int8Route route) {
  if (absl::Status status = CheckCall("GemmS8", s, route); !status.ok()) return status;
  if (route == Int8Route::kScalar) {
    GemmS8Reference(s, a, b, scale, c);
    return absl::OkStatus();
  }
  for (int64_t k0 = 0; k0 < s.k; k0 += kGemmS8MaxChunk) {
    const int64_t kc = std::min(kGemmS8MaxChunk, s.k - k0);
    if (route == Int8Route::kOneDnnVnni) {
      OneDnnChunk(s, a, b, k0, kc, k0 > 0 ? Output::kScaledSum : Output::kScaled, scale, c);
    } else {
      internal::GemmS8Avx2Chunk(s, a, b, k0, kc, {.f32 = c, .scale = scale, .accumulate = k0 > 0});
    }
  }
  return absl::OkStatus();
}

absl::Status GemmS8S32(const GemmShape& s, const int8_t* a, const int8_t* b, int32_t* c,
                       Int8Route route) {
  if (absl::Status status = CheckCall("GemmS8S32", s, route); !status.ok()) return status;
  if (s.k > kGemmS8MaxChunk) {
    return absl::InvalidArgumentError(
        absl::StrCat("GemmS8S32: k=", s.k, " exceeds ", kGemmS8MaxChunk, ", where int32 sums end"));
  }
  switch (route) {
    case Int8Route::kOneDnnVnni:
      OneDnnChunk(s, a, b, 0, s.k, Output::kInt32, 1.0f, c);
      break;
    case Int8Route::kAvx2:
      internal::GemmS8Avx2Chunk(s, a, b, 0, s.k, {.s32 = c});
      break;
    case Int8Route::kScalar:
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < s.n; ++j) c[i * s.n + j] = Dot(s, a, b, i, j, 0, s.k);
      }
      break;
  }
  return absl::OkStatus();
}

void GemmS8Reference(const GemmShape& s, const int8_t* a, const int8_t* b, float scale, float* c) {
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      float total = 0.0f;
      for (int64_t k0 = 0; k0 < s.k; k0 += kGemmS8MaxChunk) {
        const int32_t acc = Dot(s, a, b, i, j, k0, std::min(s.k, k0 + kGemmS8MaxChunk));
        total = k0 == 0 ? static_cast<float>(acc) * scale : total + static_cast<float>(acc) * scale;
      }
      c[i * s.n + j] = total;
    }
  }
}

}  // namespace muppet::kernels
