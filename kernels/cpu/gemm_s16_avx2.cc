// The AVX2 micro-kernel of the int16 GEMM: a 4 x 16 tile. vpmaddwd gives each lane's pair sum
// exactly, except that 2 x (-32768)^2 = 2^31 wraps to INT32_MIN (the only way to get it); the
// saturating add into the accumulator is emulated, that case included, to match vpdpwssds.
#include <immintrin.h>

#include <algorithm>
#include <climits>

#include "kernels/cpu/gemm_s16.h"
#include "kernels/cpu/gemm_s16_internal.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace muppet::kernels::internal {
namespace {

// acc + pair with signed saturation, where pair == INT32_MIN stands for +2^31.
inline __m256i SaturatingAdd(__m256i acc, __m256i pair) {
  const __m256i sum = _mm256_add_epi32(acc, pair);  // Wraps; the bits are right mod 2^32.
  const __m256i acc_sign = _mm256_srai_epi32(acc, 31);
  // Ordinary overflow: acc and pair share a sign that the sum lacks.
  __m256i overflow = _mm256_srai_epi32(
      _mm256_and_si256(_mm256_xor_si256(acc, sum), _mm256_xor_si256(pair, sum)), 31);
  // pair = +2^31 overflows exactly when acc >= 0; otherwise the wrapped sum is exact.
  const __m256i big = _mm256_cmpeq_epi32(pair, _mm256_set1_epi32(INT_MIN));
  overflow =
      _mm256_or_si256(_mm256_andnot_si256(big, overflow), _mm256_andnot_si256(acc_sign, big));
  // Saturate towards the sign of the true sum: acc's sign, since both addends share it.
  const __m256i bound = _mm256_xor_si256(acc_sign, _mm256_set1_epi32(INT_MAX));
  return _mm256_blendv_epi8(sum, bound, overflow);
}

}  // namespace

int64_t TileAvx2(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs, int64_t block_pairs,
                 float scale, float* c, int64_t ldc, int rows, int cols) {
  constexpr int kRows = kAvx2Rows;
  alignas(32) float sum[kRows][kAvx2Cols] = {};
  const __m256i max = _mm256_set1_epi32(INT_MAX), min = _mm256_set1_epi32(INT_MIN);
  int64_t saturated = 0;
  for (int64_t q0 = 0; q0 < pairs; q0 += block_pairs) {
    const int64_t q1 = std::min(pairs, q0 + block_pairs);
    __m256i acc[kRows][2];
    for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int64_t q = q0; q < q1;) {  // One segment's share of the block at a time.
      const S16Pair* row[kRows];
      bool live;
      const int64_t end = SegmentRows(a, q, q1, row, live);
      if (!live) {
        q = end;
        continue;
      }
      for (int64_t offset = 0; q < end; ++q, offset += a.stride) {
        const __m256i b0 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b_panel + q * kAvx2Cols * 2));
        const __m256i b1 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b_panel + q * kAvx2Cols * 2 + 16));
        for (int r = 0; r < kRows; ++r) {
          const __m256i pair = _mm256_set1_epi32(row[r][offset]);
          acc[r][0] = SaturatingAdd(acc[r][0], _mm256_madd_epi16(pair, b0));
          acc[r][1] = SaturatingAdd(acc[r][1], _mm256_madd_epi16(pair, b1));
        }
      }
    }
    for (int r = 0; r < kRows; ++r) {
      for (int h = 0; h < 2; ++h) {
        const __m256i at_bound =
            _mm256_or_si256(_mm256_cmpeq_epi32(acc[r][h], max), _mm256_cmpeq_epi32(acc[r][h], min));
        saturated += __builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(at_bound)));
        float* s = sum[r] + 8 * h;
        _mm256_store_ps(s, _mm256_add_ps(_mm256_load_ps(s), _mm256_cvtepi32_ps(acc[r][h])));
      }
    }
  }
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < cols; ++j) c[r * ldc + j] = sum[r][j] * scale;
  }
  return saturated;
}

}  // namespace muppet::kernels::internal

#pragma GCC pop_options
