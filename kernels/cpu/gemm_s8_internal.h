// Packed layouts, micro-kernel and driver of muppet's own int8 GEMM (the kAvx2 route of
// gemm_s8.h).
//
// A is packed in panels of kS8Rows rows: for each group g of four k, kS8Rows int32 values whose
// bytes are A(i, 4g .. 4g + 3), with every -128 replaced by -127 (the driver adds the difference
// back exactly). B is packed in panels of kS8Cols columns: for each group, kS8Cols x 4 bytes
// B(4g .. 4g + 3, j), column after column. Rows, columns and the last partial group are
// zero-padded, so the micro-kernel never branches on edges.
#ifndef MUPPET_KERNELS_CPU_GEMM_S8_INTERNAL_H_
#define MUPPET_KERNELS_CPU_GEMM_S8_INTERNAL_H_

#include <cstdint>
#include <vector>

#include "kernels/cpu/gemm_s8.h"
#include "kernels/cpu/gemm_shape.h"

namespace muppet::kernels::internal {

inline constexpr int kS8Rows = 4;
inline constexpr int kS8Cols = 16;  // Two ymm of eight int32 lanes.
inline constexpr int kS8GroupBytes = kS8Cols * 4;

// One A code of -128 at panel row `row`, chunk-local k `k`.
struct S8Correction {
  int32_t k;
  int32_t row;
};

// What packing learnt about a panel (its -128 codes go to the corrections instead).
struct S8PanelInfo {
  bool nonnegative = true;  // No code below 0: the panel can take a sign-free tile.
};

// Packs rows [i0, i0 + kS8Rows) and k [k0, k0 + kc) of A into `out` (groups x kS8Rows int32),
// appending the panel's -128 codes (stored as -127) to `corrections`.
S8PanelInfo PackS8A(const GemmShape& s, const int8_t* a, int64_t i0, int64_t k0, int64_t kc,
                    int32_t* out, std::vector<S8Correction>& corrections);

// A convolution's geometry as the implicit GEMM sees it: channels-last input n x h x w x c,
// square kernel, output out_h x out_w.
struct S8ConvShape {
  int64_t n, h, w, c, kernel, stride, padding, out_h, out_w;
};

// Where output pixel i's patch starts in the input: its image, and the patch's top-left input
// pixel (possibly outside the image, in the padding).
struct S8Patch {
  const int8_t* image = nullptr;  // Null past the last output pixel.
  int64_t iy0 = 0, ix0 = 0;
  bool inside = false;  // The whole patch lies inside the image.
};

S8Patch S8PatchOf(const S8ConvShape& shape, const int8_t* x, int64_t i);

// Packs column panel j0 (16 columns of the im2col matrix: channels of one kernel tap) over
// `rows` consecutive output pixels with the given patches, as B of a GEMM whose k runs over
// those pixels (backward-weights: dW = dY^T x cols). Needs c % 16 == 0.
S8PanelInfo PackS8ConvColumns(const S8ConvShape& shape, const S8Patch* patches, int64_t rows,
                              int64_t j0, int8_t* out);

// Whether 8-bit convolutions of `channels` input channels run as implicit GEMMs on the AVX2
// driver (PackS8ConvPanel, PackS8ConvColumns, in-place panels): on that route, and where every
// 16-code step of an im2col row stays inside one kernel tap.
inline bool S8ImplicitGemm(int64_t channels) {
  return ActiveInt8Route() == Int8Route::kAvx2 && channels % 16 == 0;
}

// Packs row panel `panel` of the convolution's im2col matrix (rows: output pixels; k: kernel
// taps of c channels) straight from the codes x, as PackS8A would pack the matrix itself.
// Needs c % 16 == 0.
S8PanelInfo PackS8ConvPanel(const S8ConvShape& shape, const int8_t* x, int64_t panel, int32_t* out,
                            std::vector<S8Correction>& corrections);

// Packs columns [j0, j0 + kS8Cols) and k [k0, k0 + kc) of B into `out` (groups x
// kS8GroupBytes).
S8PanelInfo PackS8B(const GemmShape& s, const int8_t* b, int64_t j0, int64_t k0, int64_t kc,
                    int8_t* out);

// Which operand of a tile is known to be non-negative: then `vpmaddubsw` takes it as the
// unsigned operand directly (codes 0..127 against -128..127: a pair sum is at most
// 2 x 127 x 128 = 32512), one instruction per 32 multiply-adds fewer than the sign trick.
// ReLU outputs make A of the forward pass and B of backward-weights non-negative.
enum class S8Signs { kBoth, kNonNegativeA, kNonNegativeB };

// acc (kS8Rows x kS8Cols, row-major) = the packed A panel times the packed B panel over `groups`
// groups of k, exactly (see gemm_s8.h for why no pair sum can saturate).
void TileS8Avx2(S8Signs signs, const int32_t* a_panel, const int8_t* b_panel, int64_t groups,
                int32_t* acc);

// A panel of a convolution's im2col matrix read where it lies, unpacked: row r's group
// g = t * quads + q (tap t, channels 4q .. 4q + 3) is the four codes at
// first[r] + tap_offsets[t] + 4q. Codes must lie in [-127, 127] (no correction is applied).
struct S8DirectPanel {
  const int8_t* first[kS8Rows];
  const int64_t* tap_offsets;
  int64_t taps = 0, quads = 0;
};

// As TileS8Avx2, with A read directly.
void TileS8Avx2Direct(S8Signs signs, const S8DirectPanel& a, const int8_t* b_panel, int32_t* acc);

// acc_row[j] -= B(k, j) for the panel's kS8Cols columns: the exact difference between a code of
// -128 at chunk-local k and the -127 that the tile multiplied.
void CorrectS8Avx2(const int8_t* b_panel, int32_t k, int32_t* acc_row);

// Packs one row panel of A (rows [panel * kS8Rows, + kS8Rows), the chunk's kc codes of k) into
// `out`, and appends the panel's -128 codes to `corrections`. The plain GEMM reads A from
// memory; a convolution unfolds it from its input on the fly (implicit GEMM). Must be callable
// from several threads at once.
class S8RowPacker {
 public:
  virtual ~S8RowPacker() = default;
  virtual S8PanelInfo Pack(int64_t panel, int32_t* out,
                           std::vector<S8Correction>& corrections) const = 0;

  // Where a panel can be read in place instead (TileS8Avx2Direct): fills `panel` and says
  // whether its codes are non-negative. By default never.
  virtual bool Direct(int64_t panel, S8DirectPanel& out, bool& nonnegative) const { return false; }
};

// Packs column panel `panel` of B (columns [panel * kS8Cols, + kS8Cols), the chunk's kc codes
// of k) into `out`; the plain GEMM reads B from memory, backward-weights unfolds it from the
// convolution's input. Must be callable from several threads at once.
class S8ColPacker {
 public:
  virtual ~S8ColPacker() = default;
  virtual S8PanelInfo Pack(int64_t panel, int8_t* out) const = 0;
};

// Where the driver writes a chunk's exact int32 sums.
struct S8Output {
  int32_t* s32 = nullptr;  // Exact sums, or
  float* f32 = nullptr;    // FP32: sum * scale, added to what is there when `accumulate`.
  float scale = 1.0f;
  bool accumulate = false;
};

// C = A x B over k [k0, k0 + kc) (kc <= kGemmS8MaxChunk) on the packed AVX2 kernel, in parallel
// over blocks of row panels; A comes from `pack_a` and B from `pack_b`, or from `a` and `b` in
// memory where those are null.
void GemmS8Avx2Chunk(const GemmShape& s, const int8_t* a, const int8_t* b, int64_t k0, int64_t kc,
                     const S8Output& out, const S8RowPacker* pack_a = nullptr,
                     const S8ColPacker* pack_b = nullptr);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_GEMM_S8_INTERNAL_H_
