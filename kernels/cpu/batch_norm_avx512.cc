// batch_norm.h's loops for AVX-512: whole blocks of 16 channels with intrinsics (the vectoriser
// split them into 128-bit pieces and spilled the accumulators), the channels after the last
// whole block by batch_norm_impl.h's loops. The same operations in the same order as those
// loops, so the same bits.
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/relu_grad.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (`__Y = __Y`), which
// -Wmaybe-uninitialized and -Wuninitialized report at every use; the values are never read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "kernels/cpu/batch_norm_impl.h"

namespace muppet::kernels::internal {
namespace {

// 16 channels of the input from element i, as floats (codes times the factor).
inline __m512 Load16(const float* x, __m512, int64_t i) { return _mm512_loadu_ps(x + i); }
inline __m512 Load16(const int8_t* x, __m512 factor, int64_t i) {
  const __m128i codes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(codes)), factor);
}
inline __m512 Load16(const int16_t* x, __m512 factor, int64_t i) {
  const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(codes)), factor);
}

// Calls body(pointer) with the input's FP32 values or codes.
template <typename Body>
void WithData(const ChannelRows& x, Body body) {
  if (x.s8 != nullptr) return body(x.s8);
  if (x.s16 != nullptr) return body(x.s16);
  body(x.f32);
}

// The low and high 8 lanes of v, widened to double.
inline __m512d Low(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
inline __m512d High(__m512 v) {
  return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

// The channels in whole blocks of 16.
int64_t WholeBlocks(int64_t c) { return c / kLanes * kLanes; }

void FloatSums16(const float* x, int64_t c, int64_t j0, int64_t begin, int64_t end, double* sum,
                 double* sum_sq) {
  __m512d s_lo = _mm512_loadu_pd(sum + j0), s_hi = _mm512_loadu_pd(sum + j0 + 8);
  __m512d q_lo = _mm512_loadu_pd(sum_sq + j0), q_hi = _mm512_loadu_pd(sum_sq + j0 + 8);
  for (int64_t row = begin; row < end; ++row) {
    const __m512 v = _mm512_loadu_ps(x + row * c + j0);
    const __m512d lo = Low(v), hi = High(v);
    s_lo = _mm512_add_pd(s_lo, lo);
    s_hi = _mm512_add_pd(s_hi, hi);
    q_lo = _mm512_add_pd(q_lo, _mm512_mul_pd(lo, lo));
    q_hi = _mm512_add_pd(q_hi, _mm512_mul_pd(hi, hi));
  }
  _mm512_storeu_pd(sum + j0, s_lo);
  _mm512_storeu_pd(sum + j0 + 8, s_hi);
  _mm512_storeu_pd(sum_sq + j0, q_lo);
  _mm512_storeu_pd(sum_sq + j0 + 8, q_hi);
}

// Codes: sums in int32 lanes, flushed to int64 every kFlushRows rows (|code| <= 2^15, so 2^15
// rows stay below 2^31); squares (up to 2^30 each) in int64 lanes, even and odd channels apart;
// the extremes in int32 lanes.
template <typename Code>
void CodeSums16(const Code* codes, double factor, int64_t c, int64_t j0, int64_t begin, int64_t end,
                double* sum, double* sum_sq, const ChannelCodeExtremes& extremes) {
  constexpr int64_t kFlushRows = int64_t{1} << 15;
  int64_t s[kLanes] = {}, q[kLanes] = {};
  __m512i lo = _mm512_set1_epi32(INT32_MAX), hi = _mm512_set1_epi32(INT32_MIN);
  for (int64_t start = begin; start < end; start += kFlushRows) {
    __m512i s32 = _mm512_setzero_si512(), q_even = _mm512_setzero_si512(),
            q_odd = _mm512_setzero_si512();
    for (int64_t row = start; row < std::min(end, start + kFlushRows); ++row) {
      const Code* r = codes + row * c + j0;
      __m512i v;
      if constexpr (sizeof(Code) == 1) {
        v = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r)));
      } else {
        v = _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r)));
      }
      s32 = _mm512_add_epi32(s32, v);
      lo = _mm512_min_epi32(lo, v);
      hi = _mm512_max_epi32(hi, v);
      const __m512i odd = _mm512_srli_epi64(v, 32);
      q_even = _mm512_add_epi64(q_even, _mm512_mul_epi32(v, v));
      q_odd = _mm512_add_epi64(q_odd, _mm512_mul_epi32(odd, odd));
    }
    alignas(64) int32_t s_lanes[kLanes];
    alignas(64) int64_t even[kLanes / 2], odd[kLanes / 2];
    _mm512_store_si512(s_lanes, s32);
    _mm512_store_si512(even, q_even);
    _mm512_store_si512(odd, q_odd);
    for (int64_t l = 0; l < kLanes; ++l) s[l] += s_lanes[l];
    for (int64_t l = 0; l < kLanes / 2; ++l) q[2 * l] += even[l], q[2 * l + 1] += odd[l];
  }
  for (int64_t l = 0; l < kLanes; ++l) {
    sum[j0 + l] += static_cast<double>(s[l]) * factor;
    sum_sq[j0 + l] += static_cast<double>(q[l]) * (factor * factor);
  }
  if (extremes.min == nullptr) return;
  _mm512_storeu_si512(extremes.min + j0,
                      _mm512_min_epi32(lo, _mm512_loadu_si512(extremes.min + j0)));
  _mm512_storeu_si512(extremes.max + j0,
                      _mm512_max_epi32(hi, _mm512_loadu_si512(extremes.max + j0)));
}

template <bool kAdd, typename Data>
void Affine16(Data x, __m512 factor, int64_t c, int64_t j0, int64_t begin, int64_t end,
              const float* scale, const float* shift, float floor, float* y,
              const ChannelAddend& addend) {
  const __m512 sc = _mm512_loadu_ps(scale + j0), sh = _mm512_loadu_ps(shift + j0);
  const __m512 fl = _mm512_set1_ps(floor), add_fl = _mm512_set1_ps(addend.floor);
  for (int64_t row = begin; row < end; ++row) {
    const int64_t i = row * c + j0;
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(Load16(x, factor, i), sc), sh);
    // max(fl, t) returns t where t is NaN, as std::max(t, floor) does.
    __m512 out = _mm512_max_ps(fl, t);
    if constexpr (kAdd) {
      out = _mm512_max_ps(add_fl, _mm512_add_ps(out, _mm512_loadu_ps(addend.values + i)));
    }
    _mm512_storeu_ps(y + (row - begin) * c + j0, out);
  }
}

// g of 16 channels from element i, whose input values are v: dy, zeroed where the output
// before the ReLU is not positive.
inline __m512 Gradient16(const ChannelGrad& grad, __m512 v, int64_t j0, int64_t i) {
  const __m512 dy = _mm512_loadu_ps(grad.dy + i);
  if (grad.relu_scale == nullptr) return dy;
  const __m512 t = _mm512_add_ps(_mm512_mul_ps(v, _mm512_loadu_ps(grad.relu_scale + j0)),
                                 _mm512_loadu_ps(grad.relu_shift + j0));
  return _mm512_maskz_mov_ps(
      _mm512_cmpgt_epi32_mask(_mm512_castps_si512(t), _mm512_setzero_si512()), dy);
}

inline __m512 Xhat16(__m512 v, const ChannelGrad& grad, int64_t j0) {
  return _mm512_mul_ps(_mm512_sub_ps(v, _mm512_loadu_ps(grad.mean + j0)),
                       _mm512_loadu_ps(grad.inv_std + j0));
}

template <typename Data>
void GradSums16(Data x, __m512 factor, const ChannelGrad& grad, int64_t c, int64_t j0,
                int64_t begin, int64_t end, double* sum_g, double* sum_g_xhat) {
  __m512d s_lo = _mm512_loadu_pd(sum_g + j0), s_hi = _mm512_loadu_pd(sum_g + j0 + 8);
  __m512d q_lo = _mm512_loadu_pd(sum_g_xhat + j0), q_hi = _mm512_loadu_pd(sum_g_xhat + j0 + 8);
  for (int64_t row = begin; row < end; ++row) {
    const int64_t i = row * c + j0;
    const __m512 v = Load16(x, factor, i);
    const __m512 g = Gradient16(grad, v, j0, i);
    const __m512 xhat = Xhat16(v, grad, j0);
    const __m512d g_lo = Low(g), g_hi = High(g);
    s_lo = _mm512_add_pd(s_lo, g_lo);
    s_hi = _mm512_add_pd(s_hi, g_hi);
    q_lo = _mm512_add_pd(q_lo, _mm512_mul_pd(g_lo, Low(xhat)));
    q_hi = _mm512_add_pd(q_hi, _mm512_mul_pd(g_hi, High(xhat)));
  }
  _mm512_storeu_pd(sum_g + j0, s_lo);
  _mm512_storeu_pd(sum_g + j0 + 8, s_hi);
  _mm512_storeu_pd(sum_g_xhat + j0, q_lo);
  _mm512_storeu_pd(sum_g_xhat + j0 + 8, q_hi);
}

template <typename Data>
void InputGrad16(Data x, __m512 factor, const ChannelGrad& grad, int64_t c, int64_t j0,
                 int64_t begin, int64_t end, const float* scale, const float* mean_g,
                 const float* mean_g_xhat, float* dx) {
  const __m512 sc = _mm512_loadu_ps(scale + j0), mg = _mm512_loadu_ps(mean_g + j0),
               mgx = _mm512_loadu_ps(mean_g_xhat + j0);
  for (int64_t row = begin; row < end; ++row) {
    const int64_t i = row * c + j0;
    const __m512 v = Load16(x, factor, i);
    const __m512 xhat = Xhat16(v, grad, j0);
    const __m512 inner =
        _mm512_sub_ps(_mm512_sub_ps(Gradient16(grad, v, j0, i), mg), _mm512_mul_ps(xhat, mgx));
    _mm512_storeu_ps(dx + i, _mm512_mul_ps(sc, inner));
  }
}

}  // namespace

void ChannelSumsAvx512(const ChannelRows& x, int64_t begin, int64_t end, double* sum,
                       double* sum_sq, const ChannelCodeExtremes& extremes) {
  const int64_t c = x.channels, whole = WholeBlocks(c);
  for (int64_t j0 = 0; j0 < whole; j0 += kLanes) {
    if (x.s8 != nullptr) {
      CodeSums16(x.s8, x.factor, c, j0, begin, end, sum, sum_sq, extremes);
    } else if (x.s16 != nullptr) {
      CodeSums16(x.s16, x.factor, c, j0, begin, end, sum, sum_sq, extremes);
    } else {
      FloatSums16(x.f32, c, j0, begin, end, sum, sum_sq);
    }
  }
  Sums(x, whole, begin, end, sum, sum_sq, extremes);
}

void ChannelAffineAvx512(const ChannelRows& x, int64_t begin, int64_t end, const float* scale,
                         const float* shift, float floor, float* y, const ChannelAddend& addend) {
  const int64_t c = x.channels, whole = WholeBlocks(c);
  WithData(x, [&](auto data) {
    const __m512 factor = _mm512_set1_ps(x.factor);
    for (int64_t j0 = 0; j0 < whole; j0 += kLanes) {
      if (addend.values != nullptr) {
        Affine16<true>(data, factor, c, j0, begin, end, scale, shift, floor, y, addend);
      } else {
        Affine16<false>(data, factor, c, j0, begin, end, scale, shift, floor, y, addend);
      }
    }
  });
  Affine(x, whole, begin, end, scale, shift, floor, y, addend);
}

void ChannelGradSumsAvx512(const ChannelRows& x, const ChannelGrad& grad, int64_t begin,
                           int64_t end, double* sum_g, double* sum_g_xhat) {
  const int64_t c = x.channels, whole = WholeBlocks(c);
  WithData(x, [&](auto data) {
    for (int64_t j0 = 0; j0 < whole; j0 += kLanes) {
      GradSums16(data, _mm512_set1_ps(x.factor), grad, c, j0, begin, end, sum_g, sum_g_xhat);
    }
  });
  grad.relu_scale != nullptr ? GradSums<true>(x, grad, whole, begin, end, sum_g, sum_g_xhat)
                             : GradSums<false>(x, grad, whole, begin, end, sum_g, sum_g_xhat);
}

void ChannelInputGradAvx512(const ChannelRows& x, const ChannelGrad& grad, int64_t begin,
                            int64_t end, const float* scale, const float* mean_g,
                            const float* mean_g_xhat, float* dx) {
  const int64_t c = x.channels, whole = WholeBlocks(c);
  WithData(x, [&](auto data) {
    for (int64_t j0 = 0; j0 < whole; j0 += kLanes) {
      InputGrad16(data, _mm512_set1_ps(x.factor), grad, c, j0, begin, end, scale, mean_g,
                  mean_g_xhat, dx);
    }
  });
  grad.relu_scale != nullptr
      ? InputGrad<true>(x, grad, whole, begin, end, scale, mean_g, mean_g_xhat, dx)
      : InputGrad<false>(x, grad, whole, begin, end, scale, mean_g, mean_g_xhat, dx);
}

}  // namespace muppet::kernels::internal

#pragma GCC diagnostic pop
#pragma GCC pop_options
