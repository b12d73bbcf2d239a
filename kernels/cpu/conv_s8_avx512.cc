// The AVX512-VNNI kernel of the 8-bit backward-weights convolution, reading x in place: the quads
// of k (four consecutive output pixels) that vpdpbusd multiplies come from interleaving four input
// pixels' channels in registers (vpermb, hence VBMI), never from an unfolded, transposed copy.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/conv_int8.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (`__Y = __Y`).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace muppet::kernels::internal {
namespace {

// Byte 4j + i of a quad vector is byte 16 i + j of four pixels' 16 codes, one after another.
alignas(64) constexpr uint8_t kQuads[64] = {
    0,  16, 32, 48, 1,  17, 33, 49, 2,  18, 34, 50, 3,  19, 35, 51, 4,  20, 36, 52, 5,  21,
    37, 53, 6,  22, 38, 54, 7,  23, 39, 55, 8,  24, 40, 56, 9,  25, 41, 57, 10, 26, 42, 58,
    11, 27, 43, 59, 12, 28, 44, 60, 13, 29, 45, 61, 14, 30, 46, 62, 15, 31, 47, 63};

// Channels [16 g, 16 g + 16) at tap offset `tap` of four pixels' patches as u8 quads (dword j:
// channel j of each pixel). `contiguous`: 16 channels, and the four pixels consecutive in one
// image row, so one 64-byte load holds them (the 16-channel layer's backward-weights ran 1.5x
// faster for it; a two-load permute for consecutive 32-channel pixels measured no faster).
// Otherwise four 16-byte loads.
inline __m512i InterleaveQuads(const uint8_t* const* p, int64_t tap, int64_t g, bool contiguous) {
  const __m512i index = _mm512_load_si512(kQuads);
  if (contiguous) return _mm512_permutexvar_epi8(index, _mm512_loadu_si512(p[0] + tap));
  const auto pixel = [&](int i) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[i] + tap + 16 * g));
  };
  __m512i v = _mm512_castsi128_si512(pixel(0));
  v = _mm512_inserti32x4(v, pixel(1), 1);
  v = _mm512_inserti32x4(v, pixel(2), 2);
  v = _mm512_inserti32x4(v, pixel(3), 3);
  return _mm512_permutexvar_epi8(index, v);
}

// One tile of the 8-bit kernel: rows [o0, o0 + kS8WeightsRows) of dW, kTileUnits units from u0;
// exact int32 sums, the +128 shift of x taken back out at the store.
template <int kTileUnits>
void Tile8(const S8WeightsBlock& block, int64_t o0, const int64_t* units, int32_t* product) {
  constexpr int kRows8 = kS8WeightsRows;
  const int64_t groups = block.x.channels / 16, quads = (block.x.pixels + 3) / 4;
  int64_t tap[kTileUnits], group[kTileUnits];
  for (int u = 0; u < kTileUnits; ++u) {
    tap[u] = block.x.tap_offsets[units[u] / groups];
    group[u] = units[u] % groups;
  }
  __m512i acc[kRows8][kTileUnits];
  // Unrolled: as in gemm_s16_avx512.cc, a rolled loop became a dead `rep stos`.
#pragma GCC unroll 16
  for (int r = 0; r < kRows8; ++r) {
    for (int u = 0; u < kTileUnits; ++u) acc[r][u] = _mm512_setzero_si512();
  }
  for (int64_t q = 0; q < quads; ++q) {
    const uint8_t* const* p = block.x.patches + 4 * q;
    const bool contiguous =
        block.x.channels == 16 && p[1] == p[0] + 16 && p[2] == p[0] + 32 && p[3] == p[0] + 48;
    __m512i x[kTileUnits];
    for (int u = 0; u < kTileUnits; ++u) x[u] = InterleaveQuads(p, tap[u], group[u], contiguous);
    const int32_t* dy = block.dy_quads + q * block.x.padded_outputs + o0;
    for (int r = 0; r < kRows8; ++r) {
      const __m512i quad = _mm512_set1_epi32(dy[r]);
      for (int u = 0; u < kTileUnits; ++u) acc[r][u] = DotQuadsWrapping(acc[r][u], x[u], quad);
    }
  }
  const int64_t k = block.x.taps * block.x.channels;
  const int rows = static_cast<int>(std::min<int64_t>(kRows8, block.x.outputs - o0));
  for (int r = 0; r < rows; ++r) {
    // Sum of 128 * dy over the block: what the shift added to every column.
    const __m512i shift = _mm512_set1_epi32(static_cast<int32_t>(128 * block.dy_sums[o0 + r]));
    for (int u = 0; u < kTileUnits; ++u) {
      _mm512_storeu_si512(product + (o0 + r) * k + units[u] * 16,
                          _mm512_sub_epi32(acc[r][u], shift));
    }
  }
}

}  // namespace

void InterleaveQuadsAvx512(const int8_t* dy, int64_t pixels, int64_t outputs,
                           int64_t padded_outputs, int32_t* quads) {
  const __m512i index = _mm512_load_si512(kQuads);
  for (int64_t q = 0; q < (pixels + 3) / 4; ++q) {
    int32_t* out = quads + q * padded_outputs;
    int64_t o = 0;
    if (4 * q + 4 <= pixels) {  // Whole quads, 16 channels at a time.
      const int8_t* rows = dy + 4 * q * outputs;
      for (; o + 16 <= outputs; o += 16) {
        const auto row = [&](int i) {
          return _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + i * outputs + o));
        };
        __m512i v = _mm512_castsi128_si512(row(0));
        v = _mm512_inserti32x4(v, row(1), 1);
        v = _mm512_inserti32x4(v, row(2), 2);
        v = _mm512_inserti32x4(v, row(3), 3);
        _mm512_storeu_si512(out + o, _mm512_permutexvar_epi8(index, v));
      }
    }
    for (; o < padded_outputs; ++o) {
      uint32_t quad = 0;
      for (int64_t i = 0; i < 4 && o < outputs && 4 * q + i < pixels; ++i) {
        quad |= uint32_t{static_cast<uint8_t>(dy[(4 * q + i) * outputs + o])} << (8 * i);
      }
      out[o] = static_cast<int32_t>(quad);
    }
  }
}

void ColumnSumsAvx512(const int8_t* dy, int64_t pixels, int64_t outputs, int64_t* sums) {
  int64_t o = 0;
  for (; o + 16 <= outputs; o += 16) {
    __m512i acc = _mm512_setzero_si512();
    for (int64_t p = 0; p < pixels; ++p) {
      const __m128i row = _mm_loadu_si128(reinterpret_cast<const __m128i*>(dy + p * outputs + o));
      acc = _mm512_add_epi32(acc, _mm512_cvtepi8_epi32(row));
    }
    alignas(64) int32_t lanes[16];
    _mm512_store_si512(lanes, acc);
    for (int l = 0; l < 16; ++l) sums[o + l] = lanes[l];
  }
  for (; o < outputs; ++o) {
    int64_t sum = 0;
    for (int64_t p = 0; p < pixels; ++p) sum += dy[p * outputs + o];
    sums[o] = sum;
  }
}

void BackwardWeightsBlockAvx512(const S8WeightsBlock& block, int32_t* product, bool parallel) {
  constexpr int kUnits8 = 3;  // 24 accumulators.
  const int64_t k = block.x.taps * block.x.channels, units = block.x.unit_count;
  if (units < k / 16) std::fill(product, product + block.x.outputs * k, 0);  // Dead taps.
  const int64_t row_blocks = (block.x.outputs + kS8WeightsRows - 1) / kS8WeightsRows;
  const auto rows_of = [&](int64_t b) {
    const int64_t o0 = b * kS8WeightsRows;
    int64_t u = 0;
    for (; u + kUnits8 <= units; u += kUnits8)
      Tile8<kUnits8>(block, o0, block.x.units + u, product);
    if (units - u == 2) Tile8<2>(block, o0, block.x.units + u, product);
    if (units - u == 1) Tile8<1>(block, o0, block.x.units + u, product);
  };
  // No `if (parallel)` clause: a region it turns off is still a region, a team of one that
  // libgomp starts and joins for every block inside the caller's region.
  if (!parallel) {
    for (int64_t b = 0; b < row_blocks; ++b) rows_of(b);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < row_blocks; ++b) rows_of(b);
}

}  // namespace muppet::kernels::internal

#pragma GCC diagnostic pop
#pragma GCC pop_options
