#include "kernels/cpu/gemm_s16.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/gemm_s16_internal.h"

namespace muppet::kernels {
namespace {

int16_t At(const GemmShape& s, const int16_t* a, int64_t i, int64_t p) {
  if (i >= s.m || p >= s.k) return 0;
  return s.a_transposed ? a[p * s.m + i] : a[i * s.k + p];
}

int16_t Bt(const GemmShape& s, const int16_t* b, int64_t p, int64_t j) {
  if (p >= s.k || j >= s.n) return 0;
  return s.b_transposed ? b[j * s.k + p] : b[p * s.n + j];
}

// Packs and multiplies with a micro-kernel of rows x cols tiles, in parallel over tiles.
int64_t Run(const GemmShape& s, const int16_t* a, const int16_t* b, float scale, float* c,
            int rows, int cols, internal::S16Tile tile) {
  const int64_t pairs = (s.k + 1) / 2;
  const int64_t row_panels = (s.m + rows - 1) / rows, col_panels = (s.n + cols - 1) / cols;
  std::vector<int32_t> a_packed(row_panels * pairs * rows);
  std::vector<int16_t> b_packed(col_panels * pairs * cols * 2);
#pragma omp parallel for schedule(static)
  for (int64_t panel = 0; panel < row_panels; ++panel) {
    int32_t* out = a_packed.data() + panel * pairs * rows;
    for (int64_t q = 0; q < pairs; ++q) {
      for (int r = 0; r < rows; ++r) {
        const int64_t i = panel * rows + r;
        const uint32_t lo = static_cast<uint16_t>(At(s, a, i, 2 * q));
        const uint32_t hi = static_cast<uint16_t>(At(s, a, i, 2 * q + 1));
        out[q * rows + r] = static_cast<int32_t>(lo | (hi << 16));
      }
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t panel = 0; panel < col_panels; ++panel) {
    int16_t* out = b_packed.data() + panel * pairs * cols * 2;
    for (int64_t q = 0; q < pairs; ++q) {
      for (int jj = 0; jj < cols; ++jj) {
        const int64_t j = panel * cols + jj;
        out[(q * cols + jj) * 2] = Bt(s, b, 2 * q, j);
        out[(q * cols + jj) * 2 + 1] = Bt(s, b, 2 * q + 1, j);
      }
    }
  }
  int64_t saturated = 0;
  const int64_t tiles = row_panels * col_panels;
#pragma omp parallel for schedule(static) reduction(+ : saturated)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t rp = t / col_panels, cp = t % col_panels;
    const int valid_rows = static_cast<int>(std::min<int64_t>(rows, s.m - rp * rows));
    const int valid_cols = static_cast<int>(std::min<int64_t>(cols, s.n - cp * cols));
    saturated += tile(a_packed.data() + rp * pairs * rows, b_packed.data() + cp * pairs * cols * 2,
                      pairs, scale, c + rp * rows * s.n + cp * cols, s.n, valid_rows, valid_cols);
  }
  return saturated;
}

}  // namespace

int64_t GemmS16Reference(const GemmShape& s, const int16_t* a, const int16_t* b, float scale,
                         float* c) {
  const int64_t pairs = (s.k + 1) / 2;
  int64_t saturated = 0;
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      float total = 0.0f;
      for (int64_t q0 = 0; q0 < pairs; q0 += kGemmS16BlockPairs) {
        int64_t acc = 0;  // Always within int32: clamped after every pair.
        for (int64_t q = q0; q < std::min(pairs, q0 + kGemmS16BlockPairs); ++q) {
          const int64_t pair = int64_t{At(s, a, i, 2 * q)} * Bt(s, b, 2 * q, j) +
                               int64_t{At(s, a, i, 2 * q + 1)} * Bt(s, b, 2 * q + 1, j);
          acc = std::clamp<int64_t>(acc + pair, INT32_MIN, INT32_MAX);
        }
        saturated += acc == INT32_MAX || acc == INT32_MIN;
        total += static_cast<float>(acc);
      }
      c[i * s.n + j] = total * scale;
    }
  }
  return saturated;
}

absl::StatusOr<int64_t> GemmS16(const GemmShape& s, const int16_t* a, const int16_t* b,
                                float scale, float* c, Isa isa) {
  if (s.m <= 0 || s.n <= 0 || s.k <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GemmS16: dimensions must be positive, got m=", s.m, " n=", s.n, " k=", s.k));
  }
  if (isa == Isa::kAvx512 && HasAvx512Vnni()) {
    return Run(s, a, b, scale, c, internal::kVnniRows, internal::kVnniCols,
               internal::TileAvx512Vnni);
  }
  if (isa >= Isa::kAvx2) {
    return Run(s, a, b, scale, c, internal::kAvx2Rows, internal::kAvx2Cols, internal::TileAvx2);
  }
  return GemmS16Reference(s, a, b, scale, c);
}

}  // namespace muppet::kernels
