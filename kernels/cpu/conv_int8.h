// 8-bit convolution passes: forward and backward-data as oneDNN's direct (transposed) int8
// convolutions, used only where oneDNN's int8 kernels are exact (Int8Route::kOneDnnVnni);
// backward-weights as blocked exact s8 x s8 -> s32 products on whichever int8 route is active.
#ifndef MUPPET_KERNELS_CPU_CONV_INT8_H_
#define MUPPET_KERNELS_CPU_CONV_INT8_H_

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/fixed_point_conv.h"
#include "kernels/cpu/padded_images.h"

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

// dw = 2^-(sdy + sx) * correlation of the codes, exact: see the definition. Reads x in place on
// AVX512-VNNI with VBMI where C % 16 == 0 (S8WeightsInPlace). Fails only if the int8 GEMM
// refuses a block (a programming error).
absl::Status BackwardWeightsInt8(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                                 float* dw);

bool S8WeightsInPlace(const ConvGeometry& g);

// One block of the in-place 8-bit backward-weights kernel: x's patches (padded to a multiple of
// 4) in images of u8 codes x + 128 (vpdpbusd multiplies unsigned by signed bytes; zeros stored
// as 128); for each quad q of pixels, x.padded_outputs int32s, each the four codes
// dy(4q..4q+3, o) (zero past the outputs and the last pixel); and dy_sums[o], the sum of dy(p, o)
// over the block, so that the shift comes back out exactly.
struct S8WeightsBlock {
  InPlacePatches<uint8_t> x;
  const int32_t* dy_quads;
  const int64_t* dy_sums;
};
// Output channels per tile: padded_outputs is a multiple of it.
inline constexpr int64_t kS8WeightsRows = 8;
// Interleaves dy (pixels x outputs codes) into the block's dy_quads: quads[q * padded_outputs
// + o] holds dy(4q + i, o) in byte i, zero past the last pixel and the outputs.
void InterleaveQuadsAvx512(const int8_t* dy, int64_t pixels, int64_t outputs,
                           int64_t padded_outputs, int32_t* quads);
// sums[o] = the sum of dy(p, o) over the pixels (at most 2^23 of them, so that 16 channels' sums
// fit int32 lanes): the block's dy_sums. A scalar loop over them was 2-3% of an 8-bit resnet20
// step.
void ColumnSumsAvx512(const int8_t* dy, int64_t pixels, int64_t outputs, int64_t* sums);
// Writes the block's exact integer dW (O x KH x KW x C) to product. `parallel`: spreads the
// block's tiles over the threads (for layers of fewer blocks than threads), else runs on the
// calling thread.
void BackwardWeightsBlockAvx512(const S8WeightsBlock& block, int32_t* product, bool parallel);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_CONV_INT8_H_
