// The AVX512-VNNI kernel of the 9-16-bit backward-weights convolution, reading x in place: the
// pairs of k (two consecutive output pixels) that vpdpwssds multiplies come from interleaving two
// input pixels' channels in registers, never from an unfolded, transposed copy.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/conv_blocked.h"
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

// Output channels per tile (broadcast from dy's pairs) and units of 16 columns of k (one tap's
// 16 channels) per tile: 16 accumulators in registers, the 16 FP32 sums (touched once a block)
// partly on the stack.
constexpr int kRows = kS16WeightsRows;
constexpr int kUnits = 2;

// The pairs (lo[c], hi[c]) of two pixels' 16 codes, channels in the 128-bit groups 0-3, 8-11,
// 4-7, 12-15: two in-lane unpacks (a vpermt2w into channel order measured no faster and costs a
// register copy). Unscramble() puts the sums back in channel order.
inline __m512i Interleave(const int16_t* lo, const int16_t* hi) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi));
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_unpacklo_epi16(a, b)),
                            _mm256_unpackhi_epi16(a, b), 1);
}

// Swaps the middle two 128-bit groups: channels 0-3, 8-11, 4-7, 12-15 back into order.
inline __m512 Unscramble(__m512 v) { return _mm512_shuffle_f32x4(v, v, 0b11011000); }

// One tile: rows [o0, o0 + kRows) of dW, at the kTileUnits units listed from `units`.
template <int kTileUnits>
int64_t Tile(const S16WeightsChunk& chunk, int64_t o0, const int64_t* units, float* dw) {
  const int64_t groups = chunk.x.channels / 16, pairs = (chunk.x.pixels + 1) / 2;
  int64_t offset[kTileUnits];  // Of each unit's codes from a patch's start.
  for (int u = 0; u < kTileUnits; ++u) {
    offset[u] = chunk.x.tap_offsets[units[u] / groups] + units[u] % groups * 16;
  }
  __m512 sum[kRows][kTileUnits];
  // Unrolled: as in gemm_s16_avx512.cc, a rolled loop became a dead `rep stos`.
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    for (int u = 0; u < kTileUnits; ++u) sum[r][u] = _mm512_setzero_ps();
  }
  const __m512i one = _mm512_set1_epi32(1);
  __m512i saturated = _mm512_setzero_si512();
  for (int64_t q0 = 0; q0 < pairs; q0 += chunk.block_pairs) {
    const int64_t q1 = std::min(pairs, q0 + chunk.block_pairs);
    __m512i acc[kRows][kTileUnits];
    for (int r = 0; r < kRows; ++r) {
      for (int u = 0; u < kTileUnits; ++u) acc[r][u] = _mm512_setzero_si512();
    }
    for (int64_t q = q0; q < q1; ++q) {
      __m512i b[kTileUnits];
      for (int u = 0; u < kTileUnits; ++u) {
        b[u] =
            Interleave(chunk.x.patches[2 * q] + offset[u], chunk.x.patches[2 * q + 1] + offset[u]);
      }
      const int32_t* a = chunk.dy_pairs + q * chunk.x.padded_outputs + o0;
      for (int r = 0; r < kRows; ++r) {
        const __m512i pair = _mm512_set1_epi32(a[r]);
        for (int u = 0; u < kTileUnits; ++u) acc[r][u] = DotPairsSaturating(acc[r][u], pair, b[u]);
      }
    }
    for (int r = 0; r < kRows; ++r) {
      for (int u = 0; u < kTileUnits; ++u) {
        saturated = _mm512_mask_add_epi32(saturated, SaturatedLanes(acc[r][u]), saturated, one);
        sum[r][u] = _mm512_add_ps(sum[r][u], _mm512_cvtepi32_ps(acc[r][u]));
      }
    }
  }
  const __m512 scale = _mm512_set1_ps(chunk.scale);
  const int64_t k = chunk.x.taps * chunk.x.channels;
  const int rows = static_cast<int>(std::min<int64_t>(kRows, chunk.x.outputs - o0));
  for (int r = 0; r < rows; ++r) {
    for (int u = 0; u < kTileUnits; ++u) {
      _mm512_storeu_ps(dw + (o0 + r) * k + units[u] * 16,
                       Unscramble(_mm512_mul_ps(sum[r][u], scale)));
    }
  }
  // Padded rows (past the outputs) have zero codes, so they never count.
  return _mm512_reduce_add_epi32(saturated);
}

}  // namespace

void InterleavePairsAvx512(const int16_t* dy, int64_t pixels, int64_t outputs,
                           int64_t padded_outputs, int32_t* pairs) {
  for (int64_t q = 0; q < (pixels + 1) / 2; ++q) {
    int32_t* out = pairs + q * padded_outputs;
    int64_t o = 0;
    if (2 * q + 2 <= pixels) {  // Whole pairs, 16 channels at a time, in channel order.
      const int16_t* rows = dy + 2 * q * outputs;
      for (; o + 16 <= outputs; o += 16) {
        const __m512i v = Interleave(rows + o, rows + outputs + o);
        _mm512_storeu_si512(out + o, _mm512_shuffle_i32x4(v, v, 0b11011000));
      }
    }
    for (; o < padded_outputs; ++o) {
      const bool inside = o < outputs, second = 2 * q + 1 < pixels;
      out[o] = inside ? S16CodePair(dy[2 * q * outputs + o],
                                    second ? dy[(2 * q + 1) * outputs + o] : int16_t{0})
                      : 0;
    }
  }
}

int64_t BackwardWeightsChunkAvx512(const S16WeightsChunk& chunk, float* dw, bool parallel) {
  const int64_t k = chunk.x.taps * chunk.x.channels, units = chunk.x.unit_count;
  if (units < k / 16) std::fill(dw, dw + chunk.x.outputs * k, 0.0f);  // Dead taps' columns.
  int64_t saturated = 0;
  const int64_t row_blocks = (chunk.x.outputs + kRows - 1) / kRows;
  const auto rows_of = [&](int64_t b) {
    const int64_t o0 = b * kRows;
    int64_t u = 0, s = 0;
    for (; u + kUnits <= units; u += kUnits) s += Tile<kUnits>(chunk, o0, chunk.x.units + u, dw);
    if (u < units) s += Tile<1>(chunk, o0, chunk.x.units + u, dw);
    return s;
  };
  // No `if (parallel)` clause: see BackwardWeightsBlockAvx512 (conv_s8_avx512.cc).
  if (!parallel) {
    for (int64_t b = 0; b < row_blocks; ++b) saturated += rows_of(b);
    return saturated;
  }
#pragma omp parallel for schedule(static) reduction(+ : saturated)
  for (int64_t b = 0; b < row_blocks; ++b) saturated += rows_of(b);
  return saturated;
}

}  // namespace muppet::kernels::internal

#pragma GCC diagnostic pop
#pragma GCC pop_options
