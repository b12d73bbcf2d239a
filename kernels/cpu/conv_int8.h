// 8-bit convolution passes: forward (and stride-1 backward-data as a forward pass) read in place
// by muppet's AVX512-VNNI kernel where the channels come in quads, else forward and
// backward-data as oneDNN's direct (transposed) int8 convolutions, used only where oneDNN's int8
// kernels are exact (Int8Route::kOneDnnVnni); backward-weights as blocked exact s8 x s8 -> s32
// products on whichever int8 route is active.
#ifndef MUPPET_KERNELS_CPU_CONV_INT8_H_
#define MUPPET_KERNELS_CPU_CONV_INT8_H_

#include <immintrin.h>

#include <algorithm>
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

// acc + the dot products of the u8 quads of a with the s8 quads of b, wrapping (not saturating),
// as _mm512_dpbusd_epi32, for the in-place AVX512-VNNI kernels; through asm for the reason
// DotPairsSaturating gives (gemm_s16_internal.h).
__attribute__((target("avx512f,avx512vnni"), always_inline)) inline __m512i DotQuadsWrapping(
    __m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// Whether ForwardInt8InPlace runs g: AVX512-VNNI, C % 4 == 0 (quads never straddle taps), and a
// reduction of at most kGemmS8MaxChunk products.
bool S8ForwardInPlace(const ConvGeometry& g);

// y = 2^-(sx + sw) * conv(codes x, codes w) (+ addend[i], if given: y's size), exact in int32,
// rounded once to FP32 (then once more for the addend), whatever the thread count; for
// S8ForwardInPlace(g) only. With a `y_range`, also gathers y's range (merged into it), each
// tile's outputs scanned right after they are written. On the AMX kernel where `amx`
// (AmxInt8Active() only), else the AVX-512 one: the same results.
void ForwardInt8InPlace(const ConvGeometry& g, const Quantized& qx, const Quantized& qw, float* y,
                        RangeScan* y_range = nullptr, const float* addend = nullptr,
                        bool amx = AmxInt8Active());

// x's codes as the in-place 8-bit kernels read them: u8 x + 128 (vpdpbusd multiplies unsigned
// by signed bytes), code 0 (128) around each image.
PaddedImages<uint8_t> ShiftedPaddedImages(const ConvGeometry& g, const int8_t* x);

// What the in-place 8-bit forward kernel reads besides x's patches. A patch's k codes that
// matter (those of live taps, which some output pixel reads inside the image) lie in
// `segments` runs of segment_codes (a multiple of 4) contiguous codes, run s at
// segment_offsets[s] from the patch's start. The outputs come in units of 16 channels (`units`
// of them, a multiple of S8ForwardUnitsPerTile(outputs)): weights[((u * segments + s) *
// segment_codes / 4 + q) * 16 + j] holds the four weights of output 16 u + j at codes 4q..4q + 3
// of run s, zero past the outputs. Every product sums (x + 128) * w, so shift_sums[o] (units * 16
// of them, zero past the outputs) is 128 times the sum of w(o) over the runs, taken back out of
// each sum; int32 arithmetic wraps, and the true sum fits (at most kGemmS8MaxChunk products of at
// most 2^14), so the difference is exact.
struct S8ForwardPass {
  const int64_t* segment_offsets;
  int64_t segments, segment_codes;
  const int32_t* weights;
  int64_t units;
  const int32_t* shift_sums;
  int64_t outputs;
  float scale;          // 2^-(sx + sw).
  const float* addend;  // Added to y where not null; pixels x outputs, as y.
  float* y;
};
// Stores the outputs [o0, o0 + 16) under `mask` of output pixel `pixel` from their int32 sums
// (shift: shift_sums[o0..]): less the shift, scaled, plus the addend. The scaling is exact (a
// power of two), so a contraction of it and the addend into an FMA changes nothing.
__attribute__((target("avx512f"), always_inline)) inline void StoreSums(const S8ForwardPass& pass,
                                                                        int64_t pixel, int64_t o0,
                                                                        __mmask16 mask,
                                                                        __m512i shift,
                                                                        __m512i sums) {
  const int64_t at = pixel * pass.outputs + o0;
  __m512 y =
      _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sums, shift)), _mm512_set1_ps(pass.scale));
  if (pass.addend != nullptr) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, pass.addend + at));
  _mm512_mask_storeu_ps(pass.y + at, mask, y);
}

// The lanes of unit u's outputs that exist (none for a unit of padding only).
inline __mmask16 UnitMask(const S8ForwardPass& pass, int64_t u) {
  const int64_t valid = std::clamp<int64_t>(pass.outputs - 16 * u, 0, 16);
  return static_cast<__mmask16>((1u << valid) - 1);
}

// Output pixels per call of ForwardInt8Avx512.
inline constexpr int kS8ForwardRows = 12;
// Units of 16 output channels per tile of the kernel for `outputs` channels: 1, 2 or 4.
int64_t S8ForwardUnitsPerTile(int64_t outputs);
// Writes output pixels [p0, p0 + rows) (rows <= kS8ForwardRows; patches[r] where pixel p0 + r's
// patch begins, for kS8ForwardRows entries) of every output channel, scaled and with the
// addend added, to pass.y. Runs on the calling thread.
void ForwardInt8Avx512(const S8ForwardPass& pass, int64_t p0, const uint8_t* const* patches,
                       int rows);

// The AMX kernel (AmxInt8Active()): tiles of 16 patches that lie a fixed `step` codes apart, so
// that one strided tile load reads a run's codes of all 16; the weights as S8ForwardPass packs
// them are the B tiles' layout already (rows of 16 quads). Each run is taken in chunks of `chunk`
// codes (a multiple of 4, at most 64, dividing segment_codes). Per thread: AmxConfigure(chunk)
// before the first tile, AmxRelease() after the last.
int64_t AmxChunk(int64_t segment_codes);
void AmxConfigure(int64_t chunk);
void AmxRelease();
// How many tiles of 16 patches ForwardInt8Amx takes at once for `units` units of outputs (so
// that four tiles of sums are in flight): 4 for one unit, 2 for two, else 1.
int AmxTilesAtOnce(int64_t units);
// `tiles` (1 to AmxTilesAtOnce(pass.units)) tiles of 16 patches, tile t's from firsts[t] on,
// `step` codes apart (all readable), into output pixels pixels[t][0..16) (-1: computed, not
// stored) of every output channel, stored as ForwardInt8Avx512 stores.
void ForwardInt8Amx(const S8ForwardPass& pass, int tiles, const uint8_t* const* firsts,
                    const int64_t (*pixels)[16], int64_t step, int64_t chunk);

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
