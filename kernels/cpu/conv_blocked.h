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
#include "kernels/cpu/padded_images.h"

namespace muppet::kernels::internal {

// Whether a 9-16-bit pass over `rows` output pixels of `channels` channels should run in blocks
// of rows rather than as one GEMM over the whole im2col matrix (see the definition for the
// numbers). 8-bit passes off oneDNN always run in blocks: the int8 GEMM packs the weights per
// block for a small fraction of its multiply-adds, and one GEMM's column matrix plus col2im ran
// backward-data at 0.3-0.5x FP32 on resnet20's 64-channel layers (PERFORMANCE.md).
bool PreferBlocks(int64_t rows, int64_t channels);

// Whether 9-16-bit forward passes of g read its input in place (an implicit GEMM, with no
// im2col rows at all): when its channels come in pairs.
bool S16Implicit(const ConvGeometry& g);

// y = 2^-(sx + sw) * conv(codes x, codes w), in blocks of output rows, on the int8 GEMM's active
// route (word lengths up to 8, reductions of at most kGemmS8MaxChunk) or the int16 GEMM (implicit
// where S16Implicit(g)); returns the saturations. Errors only if a GEMM refuses a block (a
// programming error).
absl::StatusOr<int64_t> ForwardBlocked(const ConvGeometry& g, const Quantized& qx,
                                       const Quantized& qw, float* y);

// dw = 2^-(sdy + sx) * correlation of the codes, in chunks of kConvWeightsChunkPixels output
// pixels (fixed_point_conv.h), each chunk's scaled product kept apart and the chunks added in
// order. Reads x in place on AVX512-VNNI where C % 16 == 0 (S16WeightsInPlace), else from im2col
// rows. Returns saturations.
int64_t BackwardWeightsInt16(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                             float* dw);
bool S16WeightsInPlace(const ConvGeometry& g);

// One chunk of the in-place 9-16-bit backward-weights kernel: x's patches (padded to an even
// count), and for each pair q of pixels, x.padded_outputs int32 pairs (dy(2q, o), dy(2q + 1, o)),
// zero past the outputs and the last pixel.
struct S16WeightsChunk {
  InPlacePatches<int16_t> x;
  const int32_t* dy_pairs;
  int64_t block_pairs;
  float scale;
};
// Output channels per tile of the kernel: padded_outputs is a multiple of it. 8, not 6: each
// step's two interleaved units then feed 16 multiply-adds instead of 12, and 16, 32 and 64
// outputs need no padded rows (6 padded 16 to 18); the 12-16-bit backward-weights passes of
// resnet20's layers ran 5-15% faster (bench:fixed_point_conv, Zen 4).
inline constexpr int64_t kS16WeightsRows = 8;
// Interleaves dy (pixels x outputs codes) into the chunk's dy_pairs: pairs[q * padded_outputs
// + o] = S16CodePair(dy(2q, o), dy(2q + 1, o)), zero past the last pixel and the outputs.
void InterleavePairsAvx512(const int16_t* dy, int64_t pixels, int64_t outputs,
                           int64_t padded_outputs, int32_t* pairs);
// Writes the chunk's scaled dW (O x KH x KW x C) to dw; returns its saturated block sums.
// `parallel`: spreads the chunk's tiles over the threads (for layers of fewer chunks than
// threads), else runs on the calling thread.
int64_t BackwardWeightsChunkAvx512(const S16WeightsChunk& chunk, float* dw, bool parallel);

// Stride 1: backward-data is the forward convolution of dy (geometry TransposedGeometry(g))
// with FlippedWeights(g, w): the weights rotated by 180 degrees, channels swapped, stored
// C x KH x KW x O, padded by KH - 1 - padding.
Quantized FlippedWeights(const ConvGeometry& g, const Quantized& qw);
ConvGeometry TransposedGeometry(const ConvGeometry& g);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_CONV_BLOCKED_H_
