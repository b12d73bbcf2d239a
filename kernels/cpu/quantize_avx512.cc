// AVX-512 quantiser: 16 lanes, 16 Philox counters per block of 128 elements
// (kernels/common/fixed_point_element.h).
#include <immintrin.h>

#include "kernels/common/fixed_point_element.h"
#include "kernels/cpu/quantize_internal.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (`__Y = __Y`), which
// -Wmaybe-uninitialized and -Wuninitialized report at every use; the values are never read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace muppet::kernels::internal {
namespace {

// Philox4x32-10 on 16 counters at once: lane l gets counter (c0 + l, c1, c2, c3). The state is
// held as two vectors of eight 64-bit lanes (lanes 0-7, then 8-15), each 32-bit word in the low
// half of its lane: one vpmuludq then gives a lane's whole 64-bit product, so a round costs two
// multiplies, two shifts and two three-way xors per eight counters (in 32-bit lanes, where
// vpmuludq takes even lanes only, each product also needed three shifts and two blends). The high
// halves carry garbage that nothing reads: vpmuludq takes the low halves, the shifts move only
// fresh products' high halves down, and the outputs are the low halves.
inline void Philox16(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                     __m512i out[4]) {
  const __m512i m0 = _mm512_set1_epi64(kPhiloxM0), m1 = _mm512_set1_epi64(kPhiloxM1);
  const __m512i base = _mm512_set1_epi64(c0);  // c0 + 15 < 2^32: no carry out of the low half.
  __m512i a0 = _mm512_add_epi64(base, _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  __m512i b0 = _mm512_add_epi64(base, _mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15));
  __m512i a1 = _mm512_set1_epi64(c1), a2 = _mm512_set1_epi64(c2), a3 = _mm512_set1_epi64(c3);
  __m512i b1 = a1, b2 = a2, b3 = a3;
  for (int round = 0; round < 10; ++round) {
    const __m512i key0 = _mm512_set1_epi32(static_cast<int>(k0));
    const __m512i key1 = _mm512_set1_epi32(static_cast<int>(k1));
    const __m512i pa0 = _mm512_mul_epu32(a0, m0), pa1 = _mm512_mul_epu32(a2, m1);
    const __m512i pb0 = _mm512_mul_epu32(b0, m0), pb1 = _mm512_mul_epu32(b2, m1);
    a0 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pa1, 32), a1, key0, 0x96);  // a ^ b ^ c.
    a2 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pa0, 32), a3, key1, 0x96);
    b0 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pb1, 32), b1, key0, 0x96);
    b2 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pb0, 32), b3, key1, 0x96);
    a1 = pa1;
    a3 = pa0;
    b1 = pb1;
    b3 = pb0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  // The low halves of both vectors, lanes 0-15 in order.
  const __m512i low_halves =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  out[0] = _mm512_permutex2var_epi32(a0, low_halves, b0);
  out[1] = _mm512_permutex2var_epi32(a1, low_halves, b1);
  out[2] = _mm512_permutex2var_epi32(a2, low_halves, b2);
  out[3] = _mm512_permutex2var_epi32(a3, low_halves, b3);
}

// Codes of 16 elements as int32 (clamped to [lo, hi]); adds their saturations to *saturated.
template <bool kStochastic>
inline __m512i QuantizeVector(__m512 x, __m512 bits, const QuantizeParams& p, int64_t* saturated) {
  const __m512 v = _mm512_mul_ps(x, _mm512_set1_ps(p.scale));
  __m512 q;
  if constexpr (kStochastic) {
    const __m512 f = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_sub_ps(v, f);
    const __mmask16 up =
        _mm512_cmp_ps_mask(bits, _mm512_mul_ps(frac, _mm512_set1_ps(65536.0f)), _CMP_LT_OQ);
    q = _mm512_mask_add_ps(f, up, f, _mm512_set1_ps(1.0f));
  } else {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 d = _mm512_sub_ps(v, t);
    const __mmask16 up = _mm512_cmp_ps_mask(d, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __mmask16 down = _mm512_cmp_ps_mask(d, _mm512_set1_ps(-0.5f), _CMP_LE_OQ);
    q = _mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0f));
    q = _mm512_mask_sub_ps(q, down, q, _mm512_set1_ps(1.0f));
  }
  const __m512 lo = _mm512_set1_ps(p.lo), hi = _mm512_set1_ps(p.hi);
  const __mmask16 out_of_range =
      _mm512_cmp_ps_mask(q, hi, _CMP_GT_OQ) | _mm512_cmp_ps_mask(q, lo, _CMP_LT_OQ);
  *saturated += __builtin_popcount(out_of_range);
  return _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(q, lo), hi));
}

inline void Store(int8_t* out, __m512i codes) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(codes));
}

inline void Store(int16_t* out, __m512i codes) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(codes));
}

// p by value: the code stores (int8_t is a character type) may alias the fields of a
// referenced QuantizeParams, which GCC then reloaded after every vector stored (5 loads and a
// branch on p.stochastic per 16 codes under perf).
template <bool kStochastic, typename Code>
int64_t QuantizeBlocks(const float* x, int64_t first, int64_t last, const QuantizeParams p,
                       Code* out) {
  int64_t saturated = 0;
  const __m512i low16 = _mm512_set1_epi32(0xFFFF);
  for (int64_t b = first; b < last; ++b) {
    __m512i words[4] = {};
    if constexpr (kStochastic) {
      const uint64_t counter =
          static_cast<uint64_t>(b) * 16;  // Lanes add 0..15; no carry below 2^64.
      Philox16(static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
               static_cast<uint32_t>(p.stream), static_cast<uint32_t>(p.stream >> 32),
               static_cast<uint32_t>(p.seed), static_cast<uint32_t>(p.seed >> 32), words);
    }
    for (int j = 0; j < 8; ++j) {
      const int64_t base = (b - first) * kBlock + j * 16;
      const __m512i w = j % 2 ? _mm512_srli_epi32(words[j / 2], 16) : words[j / 2];
      const __m512 bits = _mm512_cvtepi32_ps(_mm512_and_si512(w, low16));
      Store(out + base,
            QuantizeVector<kStochastic>(_mm512_loadu_ps(x + base), bits, p, &saturated));
    }
  }
  return saturated;
}

}  // namespace

void MinMaxAvx512(const float* x, int64_t n, float* min, float* max, bool* non_finite) {
  __m512 lo = _mm512_set1_ps(*min), hi = _mm512_set1_ps(*max);
  const __m512i exponent = _mm512_set1_epi32(0x7F800000);
  __mmask16 bad = 0;
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    lo = _mm512_min_ps(lo, v);
    hi = _mm512_max_ps(hi, v);
    // All exponent bits set: infinity or NaN.
    bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v), exponent), exponent);
  }
  *min = _mm512_reduce_min_ps(lo);
  *max = _mm512_reduce_max_ps(hi);
  *non_finite |= bad != 0;
}

int64_t QuantizeBlocksAvx512(const float* x, int64_t first, int64_t last, const QuantizeParams& p,
                             int8_t* out) {
  return p.stochastic ? QuantizeBlocks<true>(x, first, last, p, out)
                      : QuantizeBlocks<false>(x, first, last, p, out);
}

int64_t QuantizeBlocksAvx512(const float* x, int64_t first, int64_t last, const QuantizeParams& p,
                             int16_t* out) {
  return p.stochastic ? QuantizeBlocks<true>(x, first, last, p, out)
                      : QuantizeBlocks<false>(x, first, last, p, out);
}

}  // namespace muppet::kernels::internal

#pragma GCC diagnostic pop
#pragma GCC pop_options
