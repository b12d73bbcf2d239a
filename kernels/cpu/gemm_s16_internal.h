// Packed layouts and micro-kernels behind gemm_s16.h.
//
// A is packed in panels of MR rows: for each pair q of k, MR int32 values whose low half is
// A(i, 2q) and high half A(i, 2q + 1). B is packed in panels of NR columns: for each pair q, NR
// column pairs (B(2q, j), B(2q + 1, j)). Rows, columns and the odd last k are zero-padded, so the
// micro-kernels never branch on edges except when storing.
#ifndef MUPPET_KERNELS_CPU_GEMM_S16_INTERNAL_H_
#define MUPPET_KERNELS_CPU_GEMM_S16_INTERNAL_H_

#include <cstdint>

namespace muppet::kernels::internal {

// Computes one MR x NR tile from packed panels over `pairs` pairs of k, writes its `rows` x
// `cols` valid part (scaled) to c with row stride ldc, and returns the saturated block sums.
using S16Tile = int64_t (*)(const int32_t* a_panel, const int16_t* b_panel, int64_t pairs,
                            int64_t block_pairs, float scale, float* c, int64_t ldc, int rows,
                            int cols);

// AVX512-VNNI tiles: 6 x 32 (two zmm of 16 int32 lanes per row) for wide outputs, and 12 x 16
// for outputs at most 16 columns wide (resnet's narrow layers), where a 32-column tile would
// spend half its lanes on padding. Both keep 24 accumulators and sums in registers.
inline constexpr int kVnniWideRows = 6;
inline constexpr int kVnniWideCols = 32;
inline constexpr int kVnniNarrowRows = 12;
inline constexpr int kVnniNarrowCols = 16;
inline constexpr int kAvx2Rows = 4;
inline constexpr int kAvx2Cols = 16;  // Two ymm of 8 lanes.

int64_t TileAvx512VnniWide(const int32_t* a_panel, const int16_t* b_panel, int64_t pairs,
                           int64_t block_pairs, float scale, float* c, int64_t ldc, int rows,
                           int cols);
int64_t TileAvx512VnniNarrow(const int32_t* a_panel, const int16_t* b_panel, int64_t pairs,
                             int64_t block_pairs, float scale, float* c, int64_t ldc, int rows,
                             int cols);
int64_t TileAvx2(const int32_t* a_panel, const int16_t* b_panel, int64_t pairs, int64_t block_pairs,
                 float scale, float* c, int64_t ldc, int rows, int cols);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_GEMM_S16_INTERNAL_H_
