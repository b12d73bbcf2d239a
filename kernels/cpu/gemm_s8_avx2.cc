// The AVX2 int8 GEMM's packing, 4 x 16 micro-kernel and -128 correction (gemm_s8_internal.h).
//
// Why it is exact: `vpmaddubsw` multiplies unsigned by signed bytes and adds adjacent products
// into int16 with saturation. The kernel feeds it u = |b| (0..128; |-128| is 0x80, which read
// as unsigned is 128) and s = a * sign(b) (`vpsignb`), whose product is a * b. A codes are packed
// clamped to [-127, 127], so s never negates -128 (which would wrap) and |s| <= 127: a pair sum
// is at most 2 x 128 x 127 = 32512 < 32767, so it never saturates. `vpmaddwd` with ones then adds
// pairs into int32 exactly. The clamp's difference (a = -128 is -127 - 1, so a*b = -127*b - b) is
// subtracted from the int32 sums by CorrectS8Avx2 for every -128 that PackS8A counted. Where the
// packing found a panel of A or B without negative codes, that panel is the unsigned operand
// itself (0..127 against -128..127: pair sums of at most 32512) and the sign trick is skipped.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/gemm_s8_internal.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace muppet::kernels::internal {
namespace {

// Stores 16 codes of B, noting any negative one.
inline void StoreCodes(__m128i* out, __m128i v, S8PanelInfo& info) {
  info.nonnegative &= _mm_movemask_epi8(v) == 0;
  _mm_storeu_si128(out, v);
}

// Stores 16 codes of A and keeps their running minimum: one instruction per 16 codes on the
// common path; FinishPanel deals with the rare panel that holds -128.
inline void StoreTracked(__m128i* out, __m128i v, __m128i& min) {
  min = _mm_min_epi8(min, v);
  _mm_storeu_si128(out, v);
}

int8_t HorizontalMin(__m128i v) {
  v = _mm_min_epi8(v, _mm_srli_si128(v, 8));
  v = _mm_min_epi8(v, _mm_srli_si128(v, 4));
  v = _mm_min_epi8(v, _mm_srli_si128(v, 2));
  v = _mm_min_epi8(v, _mm_srli_si128(v, 1));
  return static_cast<int8_t>(_mm_cvtsi128_si32(v));
}

// From a packed A panel's minimum: its signs and, where it holds -128, each one replaced by -127
// and appended to `corrections` (group g, row r, byte t is k = 4g + t).
S8PanelInfo FinishPanel(int8_t* bytes, int64_t groups, int8_t min,
                        std::vector<S8Correction>& corrections) {
  S8PanelInfo info{.nonnegative = min >= 0};
  if (min > -128) return info;
  for (int64_t i = 0; i < groups * kS8Rows * 4; ++i) {
    if (bytes[i] != -128) continue;
    bytes[i] = -127;
    corrections.push_back(
        {static_cast<int32_t>(i / 16 * 4 + i % 4), static_cast<int32_t>(i / 4 % 4)});
  }
  return info;
}

// Four rows of 16 codes, each the next four groups of its row, transposed as int32 groups into
// four packed groups.
inline void Transpose4x16(__m128i r0, __m128i r1, __m128i r2, __m128i r3, __m128i* o,
                          __m128i& min) {
  const __m128i t0 = _mm_unpacklo_epi32(r0, r1), t1 = _mm_unpacklo_epi32(r2, r3);
  const __m128i t2 = _mm_unpackhi_epi32(r0, r1), t3 = _mm_unpackhi_epi32(r2, r3);
  StoreTracked(o, _mm_unpacklo_epi64(t0, t1), min);
  StoreTracked(o + 1, _mm_unpackhi_epi64(t0, t1), min);
  StoreTracked(o + 2, _mm_unpacklo_epi64(t2, t3), min);
  StoreTracked(o + 3, _mm_unpackhi_epi64(t2, t3), min);
}

inline __m128i Load16(const int8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

inline int32_t Load32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

S8PanelInfo PackS8A(const GemmShape& s, const int8_t* a, int64_t i0, int64_t k0, int64_t kc,
                    int32_t* out, std::vector<S8Correction>& corrections) {
  const int64_t groups = (kc + 3) / 4;
  int8_t* bytes = reinterpret_cast<int8_t*>(out);
  __m128i min = _mm_set1_epi8(127);
  int64_t g = 0;
  if (i0 + kS8Rows <= s.m && !s.a_transposed) {
    const int8_t* row = a + i0 * s.k + k0;
    for (; 4 * g + 16 <= kc; g += 4) {
      Transpose4x16(Load16(row + 4 * g), Load16(row + s.k + 4 * g), Load16(row + 2 * s.k + 4 * g),
                    Load16(row + 3 * s.k + 4 * g), reinterpret_cast<__m128i*>(bytes + g * 16), min);
    }
  } else if (i0 + kS8Rows <= s.m) {
    // A stored k x m: each k holds the panel's four codes side by side; a byte transpose makes
    // them row after row.
    const __m128i to_rows = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const int8_t* col = a + k0 * s.m + i0;
    for (; 4 * g + 4 <= kc; ++g) {
      const int8_t* p = col + 4 * g * s.m;
      const __m128i v =
          _mm_setr_epi32(Load32(p), Load32(p + s.m), Load32(p + 2 * s.m), Load32(p + 3 * s.m));
      StoreTracked(reinterpret_cast<__m128i*>(bytes + g * 16), _mm_shuffle_epi8(v, to_rows), min);
    }
  }
  int8_t edge_min = 127;
  for (; g < groups; ++g) {  // Edges: rows past m, the last partial group.
    for (int r = 0; r < kS8Rows; ++r) {
      for (int t = 0; t < 4; ++t) {
        const int64_t p = k0 + 4 * g + t;
        const int8_t code = p < k0 + kc ? GemmA(s, a, i0 + r, p) : 0;
        edge_min = std::min(edge_min, code);
        bytes[(g * kS8Rows + r) * 4 + t] = code;
      }
    }
  }
  return FinishPanel(bytes, groups, std::min(HorizontalMin(min), edge_min), corrections);
}

namespace {

// Four rows of B (four consecutive k), 16 columns each, interleaved byte by byte into the 16
// columns' group.
inline void Interleave4x16(__m128i r0, __m128i r1, __m128i r2, __m128i r3, __m128i* o,
                           S8PanelInfo& info) {
  const __m128i lo01 = _mm_unpacklo_epi8(r0, r1), lo23 = _mm_unpacklo_epi8(r2, r3);
  const __m128i hi01 = _mm_unpackhi_epi8(r0, r1), hi23 = _mm_unpackhi_epi8(r2, r3);
  StoreCodes(o, _mm_unpacklo_epi16(lo01, lo23), info);
  StoreCodes(o + 1, _mm_unpackhi_epi16(lo01, lo23), info);
  StoreCodes(o + 2, _mm_unpacklo_epi16(hi01, hi23), info);
  StoreCodes(o + 3, _mm_unpackhi_epi16(hi01, hi23), info);
}

// The c codes of tap (ky, kx) of a patch, or null in the padding.
inline const int8_t* Tap(const S8ConvShape& c, const S8Patch& p, int64_t ky, int64_t kx) {
  const int64_t iy = p.iy0 + ky, ix = p.ix0 + kx;
  if (p.image == nullptr || iy < 0 || ix < 0 || iy >= c.h || ix >= c.w) return nullptr;
  return p.image + (iy * c.w + ix) * c.c;
}

inline __m128i Load16OrZero(const int8_t* p) { return p ? Load16(p) : _mm_setzero_si128(); }

}  // namespace

S8Patch S8PatchOf(const S8ConvShape& c, const int8_t* x, int64_t i) {
  S8Patch p;
  if (i >= c.n * c.out_h * c.out_w) return p;
  p.image = x + i / (c.out_h * c.out_w) * c.h * c.w * c.c;
  p.iy0 = i / c.out_w % c.out_h * c.stride - c.padding;
  p.ix0 = i % c.out_w * c.stride - c.padding;
  p.inside = p.iy0 >= 0 && p.ix0 >= 0 && p.iy0 + c.kernel <= c.h && p.ix0 + c.kernel <= c.w;
  return p;
}

S8PanelInfo PackS8ConvColumns(const S8ConvShape& c, const S8Patch* patches, int64_t rows,
                              int64_t j0, int8_t* out) {
  // Column j0 + jj is channel j0 % c + jj of tap j0 / c, for all 16 (c % 16 == 0).
  const int64_t tap = j0 / c.c, channel = j0 % c.c;
  const int64_t ky = tap / c.kernel, kx = tap % c.kernel;
  S8PanelInfo info;
  for (int64_t g = 0; g < (rows + 3) / 4; ++g) {
    const int8_t* src[4];
    for (int t = 0; t < 4; ++t) {
      const int8_t* at = 4 * g + t < rows ? Tap(c, patches[4 * g + t], ky, kx) : nullptr;
      src[t] = at ? at + channel : nullptr;
    }
    Interleave4x16(Load16OrZero(src[0]), Load16OrZero(src[1]), Load16OrZero(src[2]),
                   Load16OrZero(src[3]), reinterpret_cast<__m128i*>(out + g * kS8GroupBytes), info);
  }
  return info;
}

S8PanelInfo PackS8ConvPanel(const S8ConvShape& c, const int8_t* x, int64_t panel, int32_t* out,
                            std::vector<S8Correction>& corrections) {
  S8Patch patch[kS8Rows];
  bool inside = true;
  for (int r = 0; r < kS8Rows; ++r) {
    patch[r] = S8PatchOf(c, x, panel * kS8Rows + r);
    inside &= patch[r].inside;
  }
  __m128i min = _mm_set1_epi8(127);
  __m128i* o = reinterpret_cast<__m128i*>(out);
  if (inside) {
    // Every patch inside its image (most panels): tap (ky, kx) is a fixed offset from each
    // patch's first pixel.
    const int8_t* first[kS8Rows];
    for (int r = 0; r < kS8Rows; ++r) first[r] = Tap(c, patch[r], 0, 0);
    for (int64_t ky = 0; ky < c.kernel; ++ky) {
      for (int64_t kx = 0; kx < c.kernel; ++kx) {
        const int64_t offset = (ky * c.w + kx) * c.c;
        for (int64_t at = offset; at < offset + c.c; at += 16, o += 4) {
          Transpose4x16(Load16(first[0] + at), Load16(first[1] + at), Load16(first[2] + at),
                        Load16(first[3] + at), o, min);
        }
      }
    }
  } else {
    for (int64_t ky = 0; ky < c.kernel; ++ky) {
      for (int64_t kx = 0; kx < c.kernel; ++kx) {
        const int8_t* src[kS8Rows];
        for (int r = 0; r < kS8Rows; ++r) src[r] = Tap(c, patch[r], ky, kx);
        for (int64_t at = 0; at < c.c; at += 16, o += 4) {
          Transpose4x16(Load16OrZero(src[0] ? src[0] + at : nullptr),
                        Load16OrZero(src[1] ? src[1] + at : nullptr),
                        Load16OrZero(src[2] ? src[2] + at : nullptr),
                        Load16OrZero(src[3] ? src[3] + at : nullptr), o, min);
        }
      }
    }
  }
  const int64_t groups = c.kernel * c.kernel * c.c / 4;
  return FinishPanel(reinterpret_cast<int8_t*>(out), groups, HorizontalMin(min), corrections);
}

S8PanelInfo PackS8B(const GemmShape& s, const int8_t* b, int64_t j0, int64_t k0, int64_t kc,
                    int8_t* out) {
  const int64_t groups = (kc + 3) / 4;
  S8PanelInfo info;
  int64_t g = 0;
  if (j0 + kS8Cols <= s.n && !s.b_transposed) {
    // Four rows of B, 16 columns each, interleaved byte by byte into the columns' groups.
    for (; 4 * g + 4 <= kc; ++g) {
      const int8_t* row = b + (k0 + 4 * g) * s.n + j0;
      Interleave4x16(Load16(row), Load16(row + s.n), Load16(row + 2 * s.n), Load16(row + 3 * s.n),
                     reinterpret_cast<__m128i*>(out + g * kS8GroupBytes), info);
    }
  } else if (j0 + kS8Cols <= s.n) {
    // B stored n x k: each column's group is four contiguous codes.
    for (; 4 * g + 4 <= kc; ++g) {
      int8_t* o = out + g * kS8GroupBytes;
      for (int jj = 0; jj < kS8Cols; ++jj) {
        std::memcpy(o + 4 * jj, b + (j0 + jj) * s.k + k0 + 4 * g, 4);
      }
      const __m128i* v = reinterpret_cast<const __m128i*>(o);
      for (int q = 0; q < 4; ++q) {
        info.nonnegative &= _mm_movemask_epi8(_mm_loadu_si128(v + q)) == 0;
      }
    }
  }
  for (; g < groups; ++g) {  // Edges: columns past n, the last partial group.
    for (int jj = 0; jj < kS8Cols; ++jj) {
      for (int t = 0; t < 4; ++t) {
        const int64_t p = k0 + 4 * g + t;
        const int8_t code = p < k0 + kc ? GemmB(s, b, p, j0 + jj) : 0;
        info.nonnegative &= code >= 0;
        out[g * kS8GroupBytes + 4 * jj + t] = code;
      }
    }
  }
  return info;
}

namespace {

// The 32 products of a broadcast group of four A codes with eight columns' groups of B, summed
// in fours into eight int32 lanes: the three ways of feeding `vpmaddubsw` (see S8Signs).
template <S8Signs kSigns>
inline __m256i Products(__m256i a, __m256i b, __m256i abs_b, __m256i ones) {
  __m256i pairs;
  if constexpr (kSigns == S8Signs::kNonNegativeA) {
    pairs = _mm256_maddubs_epi16(a, b);
  } else if constexpr (kSigns == S8Signs::kNonNegativeB) {
    pairs = _mm256_maddubs_epi16(b, a);
  } else {
    pairs = _mm256_maddubs_epi16(abs_b, _mm256_sign_epi8(a, b));
  }
  return _mm256_madd_epi16(pairs, ones);
}

template <S8Signs kSigns>
void Tile(const int32_t* a_panel, const int8_t* b_panel, int64_t groups, int32_t* acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  // One half of the tile's columns at a time: 4 accumulators, B, |B|, ones, a broadcast and two
  // temporaries fit the 16 ymm registers without spills (the whole 4 x 16 tile at once made GCC
  // spill two accumulators to the stack on every group).
  for (int h = 0; h < 2; ++h) {
    __m256i sum[kS8Rows];
    for (int r = 0; r < kS8Rows; ++r) sum[r] = _mm256_setzero_si256();
    const int8_t* bg = b_panel + 32 * h;
    for (int64_t g = 0; g < groups; ++g, bg += kS8GroupBytes) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg));
      const __m256i abs_b = kSigns == S8Signs::kBoth ? _mm256_abs_epi8(b) : b;
      const int32_t* a = a_panel + g * kS8Rows;
      for (int r = 0; r < kS8Rows; ++r) {
        sum[r] =
            _mm256_add_epi32(sum[r], Products<kSigns>(_mm256_set1_epi32(a[r]), b, abs_b, ones));
      }
    }
    for (int r = 0; r < kS8Rows; ++r) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + r * kS8Cols + 8 * h), sum[r]);
    }
  }
}

template <S8Signs kSigns>
void TileDirect(const S8DirectPanel& a, const int8_t* b_panel, int32_t* acc) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int h = 0; h < 2; ++h) {  // Halves of the columns, as in Tile.
    __m256i sum[kS8Rows];
    for (int r = 0; r < kS8Rows; ++r) sum[r] = _mm256_setzero_si256();
    const int8_t* bg = b_panel + 32 * h;
    for (int64_t t = 0; t < a.taps; ++t) {
      const int8_t* row[kS8Rows];
      for (int r = 0; r < kS8Rows; ++r) row[r] = a.first[r] + a.tap_offsets[t];
      for (int64_t q = 0; q < a.quads; ++q, bg += kS8GroupBytes) {
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg));
        const __m256i abs_b = kSigns == S8Signs::kBoth ? _mm256_abs_epi8(b) : b;
        for (int r = 0; r < kS8Rows; ++r) {
          sum[r] = _mm256_add_epi32(
              sum[r], Products<kSigns>(_mm256_set1_epi32(Load32(row[r] + 4 * q)), b, abs_b, ones));
        }
      }
    }
    for (int r = 0; r < kS8Rows; ++r) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + r * kS8Cols + 8 * h), sum[r]);
    }
  }
}

}  // namespace

void TileS8Avx2Direct(S8Signs signs, const S8DirectPanel& a, const int8_t* b_panel, int32_t* acc) {
  switch (signs) {
    case S8Signs::kNonNegativeA:
      return TileDirect<S8Signs::kNonNegativeA>(a, b_panel, acc);
    case S8Signs::kNonNegativeB:
      return TileDirect<S8Signs::kNonNegativeB>(a, b_panel, acc);
    case S8Signs::kBoth:
      return TileDirect<S8Signs::kBoth>(a, b_panel, acc);
  }
}

void TileS8Avx2(S8Signs signs, const int32_t* a_panel, const int8_t* b_panel, int64_t groups,
                int32_t* acc) {
  switch (signs) {
    case S8Signs::kNonNegativeA:
      return Tile<S8Signs::kNonNegativeA>(a_panel, b_panel, groups, acc);
    case S8Signs::kNonNegativeB:
      return Tile<S8Signs::kNonNegativeB>(a_panel, b_panel, groups, acc);
    case S8Signs::kBoth:
      return Tile<S8Signs::kBoth>(a_panel, b_panel, groups, acc);
  }
}

void CorrectS8Avx2(const int8_t* b_panel, int32_t k, int32_t* acc_row) {
  const int8_t* bg = b_panel + (k / 4) * kS8GroupBytes;
  // Byte k % 4 of every column's group, sign-extended: shift it to the top, then back down.
  const __m128i up = _mm_cvtsi32_si128(24 - 8 * (k % 4)), down = _mm_cvtsi32_si128(24);
  for (int h = 0; h < 2; ++h) {
    const __m256i group = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg + 32 * h));
    const __m256i codes = _mm256_sra_epi32(_mm256_sll_epi32(group, up), down);
    __m256i* row = reinterpret_cast<__m256i*>(acc_row + 8 * h);
    _mm256_storeu_si256(row, _mm256_sub_epi32(_mm256_loadu_si256(row), codes));
  }
}

}  // namespace muppet::kernels::internal

#pragma GCC pop_options
