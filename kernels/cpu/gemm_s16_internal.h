// Packed layouts and micro-kernels behind gemm_s16.h.
//
// A is packed in panels of MR rows: for each pair q of k, MR int32 values whose low half is
// A(i, 2q) and high half A(i, 2q + 1). B is packed in panels of NR columns: for each pair q, NR
// column pairs (B(2q, j), B(2q + 1, j)). Rows, columns and the odd last k are zero-padded, so the
// micro-kernels never branch on edges except when storing.
#ifndef MUPPET_KERNELS_CPU_GEMM_S16_INTERNAL_H_
#define MUPPET_KERNELS_CPU_GEMM_S16_INTERNAL_H_

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/gemm_s16.h"

namespace muppet::kernels::internal {

// Where a tile's MR rows of A lie: k runs in segments of `pairs_per_segment` pairs; pair p of
// segment s of row r is read (as an int32, S16Pair) at code starts[r] + segment_offsets[s] +
// 2 * p * stride. A packed panel is one segment of stride MR; an implicit convolution row has a
// segment per kernel tap, of stride 1, read in place.
typedef int32_t __attribute__((may_alias)) S16Pair;
struct S16RowPairs {
  const int16_t* const* starts;
  const int64_t* segment_offsets;
  int64_t pairs_per_segment;
  int64_t stride;
};

// Points row[r] at pair q of each of a tile's kRows rows, and returns where q's segment ends
// within [q, q1): the tiles walk a block one segment's share at a time. False in `live` (rows
// unset) for a kZeroSegment, which the tiles skip.
template <int kRows>
inline int64_t SegmentRows(const S16RowPairs& a, int64_t q, int64_t q1,
                           const S16Pair* (&row)[kRows], bool& live) {
  const int64_t segment = q / a.pairs_per_segment;
  const int64_t first = q - segment * a.pairs_per_segment;
  const int64_t offset = a.segment_offsets[segment];
  live = offset != kZeroSegment;
  for (int r = 0; live && r < kRows; ++r) {
    row[r] = reinterpret_cast<const S16Pair*>(a.starts[r] + offset) + first * a.stride;
  }
  return std::min(q1, q - first + a.pairs_per_segment);
}

// Computes one MR x NR tile over `pairs` pairs of k, writes its `rows` x `cols` valid part
// (scaled) to c with row stride ldc, and returns the saturated block sums.
using S16Tile = int64_t (*)(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs,
                            int64_t block_pairs, float scale, float* c, int64_t ldc, int rows,
                            int cols);

// vpdpwssds(acc, a, b), as _mm512_dpwssds_epi32, which GCC 12 compiles inside unrolled tiles
// with a register copy of the accumulator after most of them (a third of the AVX-512 int16
// tiles' instructions under perf); the asm keeps each accumulator in its register. (An embedded
// broadcast operand instead of a separate vpbroadcastd measured no faster.)
__attribute__((target("avx512f,avx512vnni"), always_inline)) inline __m512i DotPairsSaturating(
    __m512i acc, __m512i a, __m512i b) {
  asm("vpdpwssds %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// The lanes of an int32 accumulator at INT32_MAX or INT32_MIN, the saturated block sums: those
// where acc + 1 (wrapping) < INT32_MIN + 2, one add and one compare.
__attribute__((target("avx512f"), always_inline)) inline __mmask16 SaturatedLanes(__m512i acc) {
  return _mm512_cmplt_epi32_mask(_mm512_add_epi32(acc, _mm512_set1_epi32(1)),
                                 _mm512_set1_epi32(INT32_MIN + 2));
}

// AVX512-VNNI tiles: 6 x 32 (two zmm of 16 int32 lanes per row) for wide outputs, and 12 x 16
// for outputs at most 16 columns wide (resnet's narrow layers), where a 32-column tile would
// spend half its lanes on padding. Both keep 24 accumulators and sums in registers.
inline constexpr int kVnniWideRows = 6;
inline constexpr int kVnniWideCols = 32;
inline constexpr int kVnniNarrowRows = 12;
inline constexpr int kVnniNarrowCols = 16;
inline constexpr int kAvx2Rows = 4;
inline constexpr int kAvx2Cols = 16;  // Two ymm of 8 lanes.

inline constexpr int kScalarRows = 4;
inline constexpr int kScalarCols = 16;

int64_t TileAvx512VnniWide(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs,
                           int64_t block_pairs, float scale, float* c, int64_t ldc, int rows,
                           int cols);
int64_t TileAvx512VnniNarrow(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs,
                             int64_t block_pairs, float scale, float* c, int64_t ldc, int rows,
                             int cols);
int64_t TileAvx2(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs, int64_t block_pairs,
                 float scale, float* c, int64_t ldc, int rows, int cols);
// Plain loops with the reference's arithmetic, for implicit A on the scalar path.
int64_t TileScalar(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs, int64_t block_pairs,
                   float scale, float* c, int64_t ldc, int rows, int cols);

}  // namespace muppet::kernels::internal

#endif  // MUPPET_KERNELS_CPU_GEMM_S16_INTERNAL_H_
