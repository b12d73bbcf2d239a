// The AVX512-VNNI micro-kernel of the int16 GEMM: a 6 x 32 tile, 12 int32 accumulators fed by
// vpdpwssds (two int16 products per lane, added with signed saturation) and 12 FP32 sums.
#include <immintrin.h>

#include <algorithm>
#include <climits>

#include "kernels/cpu/gemm_s16.h"
#include "kernels/cpu/gemm_s16_internal.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni")
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (`__Y = __Y`).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace muppet::kernels::internal {

int64_t TileAvx512Vnni(const int32_t* a_panel, const int16_t* b_panel, int64_t pairs, float scale,
                       float* c, int64_t ldc, int rows, int cols) {
  constexpr int kRows = kVnniRows;
  __m512 sum[kRows][2];
  for (int r = 0; r < kRows; ++r) sum[r][0] = sum[r][1] = _mm512_setzero_ps();
  const __m512i max = _mm512_set1_epi32(INT_MAX), min = _mm512_set1_epi32(INT_MIN);
  int64_t saturated = 0;
  for (int64_t q0 = 0; q0 < pairs; q0 += kGemmS16BlockPairs) {
    const int64_t q1 = std::min(pairs, q0 + kGemmS16BlockPairs);
    __m512i acc[kRows][2];
    for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (int64_t q = q0; q < q1; ++q) {
      const __m512i b0 = _mm512_loadu_si512(b_panel + q * kVnniCols * 2);
      const __m512i b1 = _mm512_loadu_si512(b_panel + q * kVnniCols * 2 + 32);
      const int32_t* a = a_panel + q * kRows;
#pragma GCC unroll 6
      for (int r = 0; r < kRows; ++r) {
        const __m512i pair = _mm512_set1_epi32(a[r]);
        acc[r][0] = _mm512_dpwssds_epi32(acc[r][0], pair, b0);
        acc[r][1] = _mm512_dpwssds_epi32(acc[r][1], pair, b1);
      }
    }
    for (int r = 0; r < kRows; ++r) {
      for (int h = 0; h < 2; ++h) {
        const __mmask16 at_bound = _mm512_cmpeq_epi32_mask(acc[r][h], max) |
                                   _mm512_cmpeq_epi32_mask(acc[r][h], min);
        saturated += __builtin_popcount(at_bound);
        sum[r][h] = _mm512_add_ps(sum[r][h], _mm512_cvtepi32_ps(acc[r][h]));
      }
    }
  }
  const __m512 s = _mm512_set1_ps(scale);
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < 2; ++h) {
      const int valid = std::clamp(cols - 16 * h, 0, 16);
      if (valid == 0) continue;
      const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
      _mm512_mask_storeu_ps(c + r * ldc + 16 * h, mask, _mm512_mul_ps(sum[r][h], s));
    }
  }
  return saturated;
}

}  // namespace muppet::kernels::internal

#pragma GCC diagnostic pop
#pragma GCC pop_options
