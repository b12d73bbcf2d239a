// int8 GEMM for fixed-point layers: C = scale * (A x B) in FP32 (or A x B exactly in int32) from
// int8 codes, on one of three routes that all give the same bits:
//
// - oneDNN's s8 x s8 -> s32 matmul, only where oneDNN runs VNNI code (`vpdpbusd` adds four
//   u8 x s8 products straight into int32). Without VNNI oneDNN 2.6 uses `vpmaddubsw`, whose
//   int16 pair sums saturate: on Zen 3 a 3 x 2 x 140000 product came out -30744.5 instead of
//   -230322. That route is never selected, and refused if asked for.
// - muppet's AVX2 kernel (gemm_s8_avx2.cc), exact by construction: `vpmaddubsw` on |b| (at most
//   128, unsigned) and a * sign(b) with a clamped to [-127, 127], so a pair sum is at most
//   2 x 128 x 127 = 32512 and can never saturate int16; each A code of -128 is added back
//   exactly as a correction (a*b = max(a, -127)*b - b) before the int32 sums are converted.
// - plain loops (the reference).
//
// Overflow: products of int8 codes are at most 2^14 in magnitude, so a sum of up to 131071 of
// them fits int32 exactly. Longer reductions are split into chunks of that length whose FP32
// results are summed in chunk order: integers never wrap, and no saturation can occur.
//
// Thread safety: every function may be called from any thread; the kernels parallelise with
// OpenMP (inside an active parallel region they run on the calling thread).
#ifndef MUPPET_KERNELS_CPU_GEMM_S8_H_
#define MUPPET_KERNELS_CPU_GEMM_S8_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "kernels/cpu/gemm_shape.h"
#include "kernels/cpu/isa.h"

namespace muppet::kernels {

// The longest reduction that int32 accumulation of int8 products holds exactly.
inline constexpr int64_t kGemmS8MaxChunk = 131071;

// Where 8-bit products are computed.
enum class Int8Route {
  kOneDnnVnni,  // oneDNN's int8 primitives, on a CPU and oneDNN ISA with VNNI.
  kAvx2,        // muppet's exact AVX2 kernel.
  kScalar,      // The reference loops.
};

absl::string_view Int8RouteName(Int8Route route);

// True when muppet capped oneDNN's ISA below AMX at load time (its AMX int8 kernels crashed with
// SIGILL in training, see the definition): always, unless ONEDNN_MAX_CPU_ISA is set, in which case
// oneDNN follows it (ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX opts back in).
bool OneDnnCappedBelowAmx();

// True when oneDNN's int8 kernels are exact here: its effective ISA (the CPU, capped by
// ONEDNN_MAX_CPU_ISA) has AVX512-VNNI or AVX-VNNI.
bool OneDnnInt8IsExact();

// The fastest exact route for muppet ISA `isa`: oneDNN where OneDnnInt8IsExact(), else the AVX2
// kernel where isa >= kAvx2, else the reference loops.
Int8Route BestInt8Route(Isa isa);

// BestInt8Route(ActiveIsa()), computed once: the route every 8-bit kernel uses by default.
Int8Route ActiveInt8Route();

// Every route that is exact on this machine, fastest first (for tests and benchmarks).
std::vector<Int8Route> SupportedInt8Routes();

// C (m x n, row-major) = scale * A x B. INVALID_ARGUMENT for a non-positive dimension;
// FAILED_PRECONDITION for a route that is not exact on this machine (kOneDnnVnni without VNNI,
// kAvx2 on a CPU without AVX2).
absl::Status GemmS8(const GemmShape& shape, const int8_t* a, const int8_t* b, float scale, float* c,
                    Int8Route route = ActiveInt8Route());

// C (m x n, row-major int32) = A x B, exactly. As GemmS8, and INVALID_ARGUMENT when k exceeds
// kGemmS8MaxChunk (the sum could leave int32).
absl::Status GemmS8S32(const GemmShape& shape, const int8_t* a, const int8_t* b, int32_t* c,
                       Int8Route route = ActiveInt8Route());

// The definition with plain loops (int32 per chunk, then FP32): what every route must match bit
// for bit.
void GemmS8Reference(const GemmShape& shape, const int8_t* a, const int8_t* b, float scale,
                     float* c);

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_GEMM_S8_H_
