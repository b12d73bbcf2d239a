// AVX2 quantiser: each block's 16 Philox lanes are computed as two halves of 8
// (kernels/common/fixed_point_element.h).
#include <immintrin.h>

#include "kernels/common/fixed_point_element.h"
#include "kernels/cpu/quantize_internal.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace muppet::kernels::internal {
namespace {

// (hi, lo) of the 32x32->64-bit products m * c, lane by lane (vpmuludq takes even lanes).
inline void MulHiLo(__m256i m, __m256i c, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(m, c);
  const __m256i odd = _mm256_mul_epu32(m, _mm256_srli_epi64(c, 32));
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

inline void Philox8(__m256i c0, uint32_t c1s, uint32_t c2s, uint32_t c3s, uint32_t k0, uint32_t k1,
                    __m256i out[4]) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kPhiloxM0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kPhiloxM1));
  __m256i c1 = _mm256_set1_epi32(static_cast<int>(c1s));
  __m256i c2 = _mm256_set1_epi32(static_cast<int>(c2s));
  __m256i c3 = _mm256_set1_epi32(static_cast<int>(c3s));
  for (int round = 0; round < 10; ++round) {
    __m256i hi0, lo0, hi1, lo1;
    MulHiLo(m0, c0, &hi0, &lo0);
    MulHiLo(m1, c2, &hi1, &lo1);
    c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
    c1 = lo1;
    c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
    c3 = lo0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// Codes of 8 elements as int32 (clamped); adds their saturations to *saturated.
template <bool kStochastic>
inline __m256i QuantizeVector(__m256 x, __m256 bits, const QuantizeParams& p, int64_t* saturated) {
  const __m256 v = _mm256_mul_ps(x, _mm256_set1_ps(p.scale));
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 q;
  if constexpr (kStochastic) {
    const __m256 f = _mm256_floor_ps(v);
    const __m256 frac = _mm256_sub_ps(v, f);
    const __m256 up =
        _mm256_cmp_ps(bits, _mm256_mul_ps(frac, _mm256_set1_ps(65536.0f)), _CMP_LT_OQ);
    q = _mm256_add_ps(f, _mm256_and_ps(up, one));
  } else {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 d = _mm256_sub_ps(v, t);
    const __m256 up = _mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 down = _mm256_cmp_ps(d, _mm256_set1_ps(-0.5f), _CMP_LE_OQ);
    q = _mm256_sub_ps(_mm256_add_ps(t, _mm256_and_ps(up, one)), _mm256_and_ps(down, one));
  }
  const __m256 lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
  const __m256 out_of_range =
      _mm256_or_ps(_mm256_cmp_ps(q, hi, _CMP_GT_OQ), _mm256_cmp_ps(q, lo, _CMP_LT_OQ));
  *saturated += __builtin_popcount(_mm256_movemask_ps(out_of_range));
  return _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(q, lo), hi));
}

inline void Store(int16_t* out, __m256i codes) {
  // Values are already in range, so the saturating pack only narrows.
  const __m128i packed =
      _mm_packs_epi32(_mm256_castsi256_si128(codes), _mm256_extracti128_si256(codes, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), packed);
}

inline void Store(int8_t* out, __m256i codes) {
  const __m128i words =
      _mm_packs_epi32(_mm256_castsi256_si128(codes), _mm256_extracti128_si256(codes, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packs_epi16(words, words));
}

// p by value: the code stores (int8_t is a character type) may alias the fields of a
// referenced QuantizeParams, which GCC then reloaded after every vector stored (as in
// quantize_avx512.cc).
template <bool kStochastic, typename Code>
int64_t QuantizeBlocks(const float* x, int64_t first, int64_t last, const QuantizeParams p,
                       Code* out) {
  int64_t saturated = 0;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i low16 = _mm256_set1_epi32(0xFFFF);
  for (int64_t b = first; b < last; ++b) {
    for (int half = 0; half < 2; ++half) {  // Lanes 0-7, then 8-15, of the block's counters.
      __m256i words[4] = {};
      if constexpr (kStochastic) {
        const uint64_t counter = static_cast<uint64_t>(b) * 16;
        Philox8(_mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(counter + 8 * half)), lane),
                static_cast<uint32_t>(counter >> 32), static_cast<uint32_t>(p.stream),
                static_cast<uint32_t>(p.stream >> 32), static_cast<uint32_t>(p.seed),
                static_cast<uint32_t>(p.seed >> 32), words);
      }
      for (int j = 0; j < 8; ++j) {
        const int64_t base = (b - first) * kBlock + j * 16 + half * 8;
        const __m256i w = j % 2 ? _mm256_srli_epi32(words[j / 2], 16) : words[j / 2];
        const __m256 bits = _mm256_cvtepi32_ps(_mm256_and_si256(w, low16));
        Store(out + base,
              QuantizeVector<kStochastic>(_mm256_loadu_ps(x + base), bits, p, &saturated));
      }
    }
  }
  return saturated;
}

}  // namespace

void MinMaxAvx2(const float* x, int64_t n, float* min, float* max, bool* non_finite) {
  __m256 lo = _mm256_set1_ps(*min), hi = _mm256_set1_ps(*max);
  const __m256i exponent = _mm256_set1_epi32(0x7F800000);
  __m256i bad = _mm256_setzero_si256();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    lo = _mm256_min_ps(lo, v);
    hi = _mm256_max_ps(hi, v);
    bad = _mm256_or_si256(
        bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(v), exponent), exponent));
  }
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, lo);
  _mm256_store_ps(h, hi);
  for (int k = 0; k < 8; ++k) {
    *min = l[k] < *min ? l[k] : *min;
    *max = h[k] > *max ? h[k] : *max;
  }
  *non_finite |= !_mm256_testz_si256(bad, bad);
}

int64_t QuantizeBlocksAvx2(const float* x, int64_t first, int64_t last, const QuantizeParams& p,
                           int8_t* out) {
  return p.stochastic ? QuantizeBlocks<true>(x, first, last, p, out)
                      : QuantizeBlocks<false>(x, first, last, p, out);
}

int64_t QuantizeBlocksAvx2(const float* x, int64_t first, int64_t last, const QuantizeParams& p,
                           int16_t* out) {
  return p.stochastic ? QuantizeBlocks<true>(x, first, last, p, out)
                      : QuantizeBlocks<false>(x, first, last, p, out);
}

}  // namespace muppet::kernels::internal

#pragma GCC pop_options
