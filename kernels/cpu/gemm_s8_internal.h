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

// What packing learnt about a panel.
struct S8PanelInfo {
  int64_t clamped = 0;      // A only: codes of -128, stored as -127.
  bool nonnegative = true;  // No code below 0 (after the clamp).
};

// Packs rows [i0, i0 + kS8Rows) and k [k0, k0 + kc) of A into `out` (groups x kS8Rows int32).
S8PanelInfo PackS8A(const GemmShape& s, const int8_t* a, int64_t i0, int64_t k0, int64_t kc,
                    int32_t* out);

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

// acc_row[j] -= B(k, j) for the panel's kS8Cols columns: the exact difference between a code of
// -128 at chunk-local k and the -127 that the tile multiplied.
void CorrectS8Avx2(const int8_t* b_panel, int32_t k, int32_t* acc_row);

// Where the driver writes a chunk's exact int32 sums.
struct S8Output {
  int32_t* s32 = nullptr;  // Exact sums, or
  float* f32 = nullptr;    // FP32: sum * scale, added to what is there when `accumulate`.
  float scale = 1.0f;
  bool accumulate = false;
};

// C = A x B over k [k0, k0 + kc) (kc <= kGemmS8MaxChunk) on the packed AVX2 kernel, in parallel
// over tiles.
void GemmS8Avx2Chunk(const GemmShape& s, const int8_t* a, const int8_t* b, int64_t k0, int64_t kc,
                     const S8Output& out);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_GEMM_S8_INTERNAL_H_
