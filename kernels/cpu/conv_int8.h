// 8-bit convolution passes: forward and backward-data as oneDNN's direct (transposed) int8
// convolutions, used only where oneDNN's int8 kernels are exact (Int8Route::kOneDnnVnni);
// backward-weights as blocked exact s8 x s8 -> s32 products on whichever int8 route is active.
#ifndef MUPPET_KERNELS_CPU_CONV_INT8_H_
#define MUPPET_KERNELS_CPU_CONV_INT8_H_

#include <cstdint>

#include "absl/status/status.h"

#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/fixed_point_conv.h"

namespace muppet::kernels::internal {

enum class Pass : int64_t { kForward, kBackwardData };

// Right padding of the transposed convolution that maps dy (out_h x out_w) back onto x (h x w):
// smaller than the left padding where the forward convolution's last stride window dropped
// input rows. Backward-data can run directly only where it is not negative.
int64_t DeconvRightPadding(const ConvGeometry& g, int64_t in, int64_t out);

// out = pass(codes a, codes w), unscaled (the caller applies 2^-(sa + sw)), with exact integer
// accumulation while each output sums at most kGemmS8MaxChunk products, which the caller
// checks.
void DirectInt8Run(const ConvGeometry& g, Pass pass, const Quantized& qa, const Quantized& qw,
                   float* out);

// dw = 2^-(sdy + sx) * correlation of the codes, exact: see the definition. Fails only if the
// int8 GEMM refuses a block (a programming error).
absl::Status BackwardWeightsInt8(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                                 float* dw);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_CONV_INT8_H_
