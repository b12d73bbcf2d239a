// Blocked convolution passes on the integer GEMMs: routes that never materialise the whole
// im2col matrix, for layers where it dwarfs the weights. Forward (and stride-1 backward-data as a
// forward pass) at every word length where oneDNN's direct int8 convolution is not used;
// backward-weights at 9-16 bits (oneDNN has no int16 convolution).
#ifndef MUPPET_KERNELS_CPU_CONV_BLOCKED_H_
#define MUPPET_KERNELS_CPU_CONV_BLOCKED_H_

#include <cstdint>

#include "absl/status/statusor.h"

#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/fixed_point_conv.h"

namespace muppet::kernels::internal {

// Whether a 9-16-bit pass over `rows` output pixels of `channels` channels should run in blocks
// of rows rather than as one GEMM over the whole im2col matrix (see the definition for the
// numbers). 8-bit passes off oneDNN always run in blocks: the int8 GEMM packs the weights per
// block for a small fraction of its multiply-adds, and one GEMM's column matrix plus col2im ran
// backward-data at 0.3-0.5x FP32 on resnet20's 64-channel layers (PERFORMANCE.md).
bool PreferBlocks(int64_t rows, int64_t channels);

// y = 2^-(sx + sw) * conv(codes x, codes w), in blocks of output rows, on the int8 GEMM's active
// route (word lengths up to 8, reductions of at most kGemmS8MaxChunk) or the int16 GEMM; returns
// the saturations. Errors only if a GEMM refuses a block (a programming error).
absl::StatusOr<int64_t> ForwardBlocked(const ConvGeometry& g, const Quantized& qx,
                                       const Quantized& qw, float* y);

// dw = 2^-(sdy + sx) * correlation of the codes, in blocks of rows; returns saturations.
int64_t BackwardWeightsInt16(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                             float* dw);

// Stride 1: backward-data is the forward convolution of dy (geometry TransposedGeometry(g))
// with FlippedWeights(g, w): the weights rotated by 180 degrees, channels swapped, stored
// C x KH x KW x O, padded by KH - 1 - padding.
Quantized FlippedWeights(const ConvGeometry& g, const Quantized& qw);
ConvGeometry TransposedGeometry(const ConvGeometry& g);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_CONV_BLOCKED_H_
