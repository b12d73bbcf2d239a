// 9-16-bit convolution passes on our int16 GEMM (oneDNN has no int16 convolution): blocked
// routes that never materialise the whole im2col matrix, for layers where it dwarfs the weights.
#ifndef MUPPET_KERNELS_CPU_CONV_INT16_H_
#define MUPPET_KERNELS_CPU_CONV_INT16_H_

#include <cstdint>

#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/fixed_point_conv.h"

namespace muppet::kernels::internal {

// Whether a pass over `rows` output pixels of `channels` channels should run in blocks of rows
// rather than as one GEMM over the whole im2col matrix (see the definition for the numbers).
bool PreferBlocks(int64_t rows, int64_t channels);

// y = 2^-(sx + sw) * conv(codes x, codes w), in blocks of output rows; returns saturations.
int64_t ForwardInt16(const ConvGeometry& g, const Quantized& qx, const Quantized& qw, float* y);

// dw = 2^-(sdy + sx) * correlation of the codes, in blocks of rows; returns saturations.
int64_t BackwardWeightsInt16(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                             float* dw);

// Stride 1: backward-data is the forward convolution of dy (geometry TransposedGeometry(g))
// with FlippedWeights(g, w): the weights rotated by 180 degrees, channels swapped, stored
// C x KH x KW x O, padded by KH - 1 - padding.
Quantized FlippedWeights(const ConvGeometry& g, const Quantized& qw);
ConvGeometry TransposedGeometry(const ConvGeometry& g);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_CONV_INT16_H_
