// The AMX kernel of the 8-bit forward convolution read in place: tdpbusd multiplies the u8 codes
// of 16 output pixels' patches (one strided tile load from the shifted, padded images) by the s8
// weights of 16 output channels into a tile of 16 x 16 int32 sums, which wrap as vpdpbusd's do.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/conv_int8.h"

#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl")
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (`__Y = __Y`).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace muppet::kernels::internal {
namespace {

// The tile configuration's memory layout (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles: tmm0-1 the pixels' codes (A), tmm2-3 the weights (B), tmm4-7 four tiles of sums (C):
// the configuration every kernel here uses.
constexpr int kUnitsAtOnce = 4;
constexpr int kPixels = 16;
constexpr int kRowBytes = 64;

// The skeleton of every kernel here: tiles of sums tmm4 .. tmm4 + kSums - 1 zeroed, then
// body(at, w) for each chunk of each run (`at`: the chunk's offset in a patch, `w`: its weights
// in unit 0), then the sums stored into sums[0 .. kSums).
template <int kSums, typename Body>
void Sums(const S8ForwardPass& pass, int64_t chunk, int32_t (*sums)[kPixels * 16], Body body) {
  _tile_zero(4);
  if constexpr (kSums > 1) _tile_zero(5);
  if constexpr (kSums > 2) _tile_zero(6);
  if constexpr (kSums > 3) _tile_zero(7);
  const int64_t quads = pass.segment_codes / 4;
  for (int64_t s = 0; s < pass.segments; ++s) {
    for (int64_t c0 = 0; c0 < pass.segment_codes; c0 += chunk) {
      body(pass.segment_offsets[s] + c0, pass.weights + (s * quads + c0 / 4) * 16);
    }
  }
  _tile_stored(4, sums[0], kRowBytes);
  if constexpr (kSums > 1) _tile_stored(5, sums[1], kRowBytes);
  if constexpr (kSums > 2) _tile_stored(6, sums[2], kRowBytes);
  if constexpr (kSums > 3) _tile_stored(7, sums[3], kRowBytes);
}

// The sums of units [u0, u0 + kUnits) of one tile of patches from `first` into sums[u].
template <int kUnits>
void Units(const S8ForwardPass& pass, const uint8_t* first, int64_t step, int64_t u0, int64_t chunk,
           int32_t (*sums)[kPixels * 16]) {
  const int64_t unit = pass.segments * (pass.segment_codes / 4) * 16;  // Between units' weights.
  Sums<kUnits>(pass, chunk, sums, [&](int64_t at, const int32_t* w0) {
    const int32_t* w = w0 + u0 * unit;
    _tile_loadd(0, first + at, step);
    _tile_loadd(2, w, kRowBytes);
    _tile_dpbusd(4, 0, 2);
    if constexpr (kUnits > 1) {
      _tile_loadd(3, w + unit, kRowBytes);
      _tile_dpbusd(5, 0, 3);
    }
    if constexpr (kUnits > 2) {
      _tile_loadd(2, w + 2 * unit, kRowBytes);
      _tile_dpbusd(6, 0, 2);
    }
    if constexpr (kUnits > 3) {
      _tile_loadd(3, w + 3 * unit, kRowBytes);
      _tile_dpbusd(7, 0, 3);
    }
  });
}

// The sums of unit 0 (the only one) of four tiles of patches, from firsts[t], into sums[t]: four
// tiles of sums in flight, as with four units.
void FourTiles(const S8ForwardPass& pass, const uint8_t* const* firsts, int64_t step, int64_t chunk,
               int32_t (*sums)[kPixels * 16]) {
  Sums<4>(pass, chunk, sums, [&](int64_t at, const int32_t* w) {
    _tile_loadd(2, w, kRowBytes);
    _tile_loadd(0, firsts[0] + at, step);
    _tile_dpbusd(4, 0, 2);
    _tile_loadd(1, firsts[1] + at, step);
    _tile_dpbusd(5, 1, 2);
    _tile_loadd(0, firsts[2] + at, step);
    _tile_dpbusd(6, 0, 2);
    _tile_loadd(1, firsts[3] + at, step);
    _tile_dpbusd(7, 1, 2);
  });
}

// The sums of units 0 and 1 of two tiles of patches into sums[2 t + u].
void TwoTilesTwoUnits(const S8ForwardPass& pass, const uint8_t* const* firsts, int64_t step,
                      int64_t chunk, int32_t (*sums)[kPixels * 16]) {
  const int64_t unit = pass.segments * (pass.segment_codes / 4) * 16;
  Sums<4>(pass, chunk, sums, [&](int64_t at, const int32_t* w) {
    _tile_loadd(0, firsts[0] + at, step);
    _tile_loadd(1, firsts[1] + at, step);
    _tile_loadd(2, w, kRowBytes);
    _tile_loadd(3, w + unit, kRowBytes);
    _tile_dpbusd(4, 0, 2);
    _tile_dpbusd(5, 0, 3);
    _tile_dpbusd(6, 1, 2);
    _tile_dpbusd(7, 1, 3);
  });
}

// Stores unit u's sums of one tile into the tile's output pixels (-1: not stored).
void StoreTile(const S8ForwardPass& pass, const int32_t* sums, const int64_t* pixels, int64_t u) {
  const int64_t o0 = u * 16;
  const __mmask16 mask = UnitMask(pass, u);
  if (mask == 0) return;
  const __m512i shift = _mm512_loadu_si512(pass.shift_sums + o0);
  for (int r = 0; r < kPixels; ++r) {
    if (pixels[r] >= 0)
      StoreSums(pass, pixels[r], o0, mask, shift, _mm512_load_si512(sums + r * 16));
  }
}

}  // namespace

int AmxTilesAtOnce(int64_t units) { return units == 1 ? 4 : units == 2 ? 2 : 1; }

int64_t AmxChunk(int64_t segment_codes) {
  int64_t chunk = std::min<int64_t>(kRowBytes, segment_codes);
  while (segment_codes % chunk != 0 || chunk % 4 != 0) --chunk;
  return chunk;
}

void AmxConfigure(int64_t chunk) {
  TileConfig config;
  for (int t = 0; t <= 1; ++t) {  // A: 16 pixels x chunk codes.
    config.rows[t] = kPixels;
    config.colsb[t] = static_cast<uint16_t>(chunk);
  }
  for (int t = 2; t <= 3; ++t) {  // B: chunk / 4 quads x 16 outputs.
    config.rows[t] = static_cast<uint8_t>(chunk / 4);
    config.colsb[t] = kRowBytes;
  }
  for (int t = 4; t < 8; ++t) {  // C: 16 pixels x 16 int32 sums.
    config.rows[t] = kPixels;
    config.colsb[t] = kRowBytes;
  }
  _tile_loadconfig(&config);
}

void AmxRelease() { _tile_release(); }

void ForwardInt8Amx(const S8ForwardPass& pass, int tiles, const uint8_t* const* firsts,
                    const int64_t (*pixels)[kPixels], int64_t step, int64_t chunk) {
  alignas(64) int32_t sums[kUnitsAtOnce][kPixels * 16];
  if (tiles == 4 && pass.units == 1) {
    FourTiles(pass, firsts, step, chunk, sums);
    for (int t = 0; t < 4; ++t) StoreTile(pass, sums[t], pixels[t], 0);
    return;
  }
  if (tiles == 2 && pass.units == 2) {
    TwoTilesTwoUnits(pass, firsts, step, chunk, sums);
    for (int t = 0; t < 2; ++t) {
      for (int u = 0; u < 2; ++u) StoreTile(pass, sums[2 * t + u], pixels[t], u);
    }
    return;
  }
  for (int t = 0; t < tiles; ++t) {
    for (int64_t u0 = 0; u0 < pass.units; u0 += kUnitsAtOnce) {
      const int64_t units = std::min<int64_t>(kUnitsAtOnce, pass.units - u0);
      switch (units) {
        case 1:
          Units<1>(pass, firsts[t], step, u0, chunk, sums);
          break;
        case 2:
          Units<2>(pass, firsts[t], step, u0, chunk, sums);
          break;
        case 3:
          Units<3>(pass, firsts[t], step, u0, chunk, sums);
          break;
        default:
          Units<4>(pass, firsts[t], step, u0, chunk, sums);
      }
      for (int64_t u = 0; u < units; ++u) StoreTile(pass, sums[u], pixels[t], u0 + u);
    }
  }
}

}  // namespace muppet::kernels::internal

#pragma GCC diagnostic pop
#pragma GCC pop_options
