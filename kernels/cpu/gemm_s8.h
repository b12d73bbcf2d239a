// int8 GEMM for fixed-point layers: C = scale * (A x B) in FP32, from int8 codes, through
// oneDNN's s8 x s8 -> s32 matmul (VNNI where the CPU has it), with the rescale by
// scale = 2^-(sa + sb) fused into the primitive's output.
//
// Overflow: products of int8 codes are at most 2^14 in magnitude, so a sum of up to 131071 of
// them fits int32 exactly. Longer reductions are split into chunks of that length whose FP32
// results are summed (oneDNN's sum post-op): integers never wrap, and no saturation can occur.
#ifndef MUPPET_KERNELS_CPU_GEMM_S8_H_
#define MUPPET_KERNELS_CPU_GEMM_S8_H_

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cpu/gemm_shape.h"

namespace muppet::kernels {

// The longest reduction that int32 accumulation of int8 products holds exactly.
inline constexpr int64_t kGemmS8MaxChunk = 131071;

// C (m x n, row-major) = scale * A x B. INVALID_ARGUMENT for a non-positive dimension.
absl::Status GemmS8(const GemmShape& shape, const int8_t* a, const int8_t* b, float scale,
                    float* c);

// The same result computed with plain loops (int32 per chunk, then FP32): the reference the
// tests compare against, and the fallback where oneDNN declines a shape.
void GemmS8Reference(const GemmShape& shape, const int8_t* a, const int8_t* b, float scale,
                     float* c);

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_GEMM_S8_H_
