// The AVX512-VNNI kernel of the 8-bit forward convolution read in place (an implicit GEMM): each
// output pixel's patch is read from x's shifted, padded images, four channels at a time as one
// u8 quad that vpdpbusd multiplies by four weights of 16 output channels at once.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/conv_int8.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni")
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (`__Y = __Y`).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace muppet::kernels::internal {
namespace {

typedef int32_t __attribute__((may_alias)) Quad;

// One tile: kRows output pixels from p0 (rows of them real, patches[r] where pixel p0 + r's
// patch begins) by kUnits units of 16 output channels from u0.
template <int kRows, int kUnits>
void Tile(const S8ForwardPass& pass, int64_t p0, const uint8_t* const* patches, int rows,
          int64_t u0) {
  const int64_t quads = pass.segment_codes / 4, unit_quads = pass.segments * quads;
  __m512i acc[kRows][kUnits];
  // Unrolled: as in gemm_s16_avx512.cc, a rolled loop became a dead `rep stos`.
#pragma GCC unroll 24
  for (int r = 0; r < kRows; ++r) {
    for (int u = 0; u < kUnits; ++u) acc[r][u] = _mm512_setzero_si512();
  }
  const int32_t* w = pass.weights + u0 * unit_quads * 16;
  for (int64_t s = 0; s < pass.segments; ++s) {
    const Quad* row[kRows];
    for (int r = 0; r < kRows; ++r) {
      row[r] = reinterpret_cast<const Quad*>(patches[r] + pass.segment_offsets[s]);
    }
    for (int64_t q = 0; q < quads; ++q, w += 16) {
      __m512i b[kUnits];
      for (int u = 0; u < kUnits; ++u) b[u] = _mm512_loadu_si512(w + u * unit_quads * 16);
#pragma GCC unroll 24
      for (int r = 0; r < kRows; ++r) {
        const __m512i a = _mm512_set1_epi32(row[r][q]);
        for (int u = 0; u < kUnits; ++u) acc[r][u] = DotQuadsWrapping(acc[r][u], a, b[u]);
      }
    }
  }
  for (int u = 0; u < kUnits; ++u) {
    const int64_t o0 = (u0 + u) * 16;
    const __mmask16 mask = UnitMask(pass, u0 + u);
    if (mask == 0) continue;
    const __m512i shift = _mm512_loadu_si512(pass.shift_sums + o0);
    for (int r = 0; r < rows; ++r) StoreSums(pass, p0 + r, o0, mask, shift, acc[r][u]);
  }
}

// Pixels [p0, p0 + kRows), every unit.
template <int kRows, int kUnits>
void Pixels(const S8ForwardPass& pass, int64_t p0, const uint8_t* const* patches, int rows) {
  for (int64_t u = 0; u < pass.units; u += kUnits) Tile<kRows, kUnits>(pass, p0, patches, rows, u);
}

}  // namespace

int64_t S8ForwardUnitsPerTile(int64_t outputs) {
  if (outputs <= 16) return 1;
  if (outputs <= 32) return 2;
  return 4;
}

void ForwardInt8Avx512(const S8ForwardPass& pass, int64_t p0, const uint8_t* const* patches,
                       int rows) {
  constexpr int kHalf = kS8ForwardRows / 2;
  switch (S8ForwardUnitsPerTile(pass.outputs)) {
    case 1:
      return Pixels<kS8ForwardRows, 1>(pass, p0, patches, rows);
    case 2:
      return Pixels<kS8ForwardRows, 2>(pass, p0, patches, rows);
    default:  // Two tiles of half the pixels: 24 accumulators each.
      Pixels<kHalf, 4>(pass, p0, patches, std::min(rows, kHalf));
      if (rows > kHalf) Pixels<kHalf, 4>(pass, p0 + kHalf, patches + kHalf, rows - kHalf);
  }
}

}  // namespace muppet::kernels::internal

#pragma GCC diagnostic pop
#pragma GCC pop_options
