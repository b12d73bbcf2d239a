// The AVX512-VNNI micro-kernels of the int16 GEMM: kRows x (16 * kHalves) tiles whose int32
// accumulators are fed by vpdpwssds (two int16 products per lane, added with signed saturation)
// and widened into FP32 sums after every block.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/gemm_s16.h"
#include "kernels/cpu/gemm_s16_internal.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni")
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (`__Y = __Y`).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace muppet::kernels::internal {

namespace {

template <int kRows, int kHalves>
int64_t Tile(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs, int64_t block_pairs,
             float scale, float* c, int64_t ldc, int rows, int cols) {
  constexpr int kCols = 16 * kHalves;
  __m512 sum[kRows][kHalves];
  // Unrolled: the loop GCC left rolled became a `rep stos` zeroing a stack copy of the sums that
  // nothing reads (5% of the 12 x 16 tile's time).
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) {
    for (int h = 0; h < kHalves; ++h) sum[r][h] = _mm512_setzero_ps();
  }
  int64_t saturated = 0;
  for (int64_t q0 = 0; q0 < pairs; q0 += block_pairs) {
    const int64_t q1 = std::min(pairs, q0 + block_pairs);
    __m512i acc[kRows][kHalves];
    for (int r = 0; r < kRows; ++r) {
      for (int h = 0; h < kHalves; ++h) acc[r][h] = _mm512_setzero_si512();
    }
    for (int64_t q = q0; q < q1;) {  // One segment's share of the block at a time.
      const S16Pair* row[kRows];
      bool live;
      const int64_t end = SegmentRows(a, q, q1, row, live);
      if (!live) {
        q = end;
        continue;
      }
      for (int64_t offset = 0; q < end; ++q, offset += a.stride) {
        __m512i bq[kHalves];
        for (int h = 0; h < kHalves; ++h)
          bq[h] = _mm512_loadu_si512(b_panel + (q * kCols + 16 * h) * 2);
#pragma GCC unroll 12
        for (int r = 0; r < kRows; ++r) {
          const __m512i pair = _mm512_set1_epi32(row[r][offset]);
          for (int h = 0; h < kHalves; ++h) acc[r][h] = DotPairsSaturating(acc[r][h], pair, bq[h]);
        }
      }
    }
    for (int r = 0; r < kRows; ++r) {
      for (int h = 0; h < kHalves; ++h) {
        saturated += __builtin_popcount(SaturatedLanes(acc[r][h]));
        sum[r][h] = _mm512_add_ps(sum[r][h], _mm512_cvtepi32_ps(acc[r][h]));
      }
    }
  }
  const __m512 s = _mm512_set1_ps(scale);
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < kHalves; ++h) {
      const int valid = std::clamp(cols - 16 * h, 0, 16);
      if (valid == 0) continue;
      const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
      _mm512_mask_storeu_ps(c + r * ldc + 16 * h, mask, _mm512_mul_ps(sum[r][h], s));
    }
  }
  return saturated;
}

}  // namespace

int64_t TileAvx512VnniWide(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs,
                           int64_t block_pairs, float scale, float* c, int64_t ldc, int rows,
                           int cols) {
  return Tile<kVnniWideRows, kVnniWideCols / 16>(a, b_panel, pairs, block_pairs, scale, c, ldc,
                                                 rows, cols);
}

int64_t TileAvx512VnniNarrow(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs,
                             int64_t block_pairs, float scale, float* c, int64_t ldc, int rows,
                             int cols) {
  return Tile<kVnniNarrowRows, kVnniNarrowCols / 16>(a, b_panel, pairs, block_pairs, scale, c, ldc,
                                                     rows, cols);
}

}  // namespace muppet::kernels::internal

#pragma GCC diagnostic pop
#pragma GCC pop_options
