#include "kernels/cpu/gemm_s16.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/gemm_s16_internal.h"
#include "kernels/cpu/scratch.h"

namespace muppet::kernels {
namespace {

// Packs rows [i0, i0 + rows) of A into one panel: out[q * rows + r] = (A(i, 2q), A(i, 2q + 1)).
// Direct loops over the storage order; padding (rows past m, the odd last k) is zero.
void PackA(const GemmShape& s, const int16_t* a, int64_t i0, int rows, int64_t pairs,
           int32_t* out) {
  std::fill(out, out + pairs * rows, 0);
  const int valid = static_cast<int>(std::min<int64_t>(rows, s.m - i0));
  const int64_t full = s.k / 2;  // Pairs without padding.
  for (int r = 0; r < valid; ++r) {
    const int64_t i = i0 + r;
    if (s.a_transposed) {  // A(i, p) = a[p * m + i].
      for (int64_t q = 0; q < full; ++q)
        out[q * rows + r] = S16CodePair(a[2 * q * s.m + i], a[(2 * q + 1) * s.m + i]);
      if (s.k % 2) out[full * rows + r] = S16CodePair(a[(s.k - 1) * s.m + i], 0);
    } else {  // A(i, p) = a[i * k + p]: each pair is contiguous.
      const int16_t* row = a + i * s.k;
      for (int64_t q = 0; q < full; ++q)
        out[q * rows + r] = S16CodePair(row[2 * q], row[2 * q + 1]);
      if (s.k % 2) out[full * rows + r] = S16CodePair(row[s.k - 1], 0);
    }
  }
}

// Packs columns [j0, j0 + cols) of B: out[(q * cols + jj) * 2 + t] = B(2q + t, j).
void PackB(const GemmShape& s, const int16_t* b, int64_t j0, int cols, int64_t pairs,
           int16_t* out) {
  std::fill(out, out + pairs * cols * 2, 0);
  const int valid = static_cast<int>(std::min<int64_t>(cols, s.n - j0));
  for (int64_t q = 0; q < pairs; ++q) {
    const bool has_second = 2 * q + 1 < s.k;
    int16_t* o = out + q * cols * 2;
    if (s.b_transposed) {  // B(p, j) = b[j * k + p].
      for (int jj = 0; jj < valid; ++jj) {
        const int16_t* col = b + (j0 + jj) * s.k;
        o[2 * jj] = col[2 * q];
        o[2 * jj + 1] = has_second ? col[2 * q + 1] : 0;
      }
    } else {  // B(p, j) = b[p * n + j]: interleave two rows.
      const int16_t* row0 = b + 2 * q * s.n + j0;
      const int16_t* row1 = row0 + s.n;
      for (int jj = 0; jj < valid; ++jj) {
        o[2 * jj] = row0[jj];
        o[2 * jj + 1] = has_second ? row1[jj] : 0;
      }
    }
  }
}

// The arithmetic every path must match, for one output: pair_sum(q), the exact sum of pair q of
// k, added to an int32 accumulator with signed saturation, in blocks of block_pairs pairs; each
// block's accumulator counted in `saturated` if it ends at a bound, then widened to FP32 and
// added in block order. Returns the unscaled total.
template <typename PairSum>
float ReferenceSum(int64_t pairs, int64_t block_pairs, PairSum pair_sum, int64_t& saturated) {
  float total = 0.0f;
  for (int64_t q0 = 0; q0 < pairs; q0 += block_pairs) {
    int64_t acc = 0;  // Always within int32: clamped after every pair.
    for (int64_t q = q0; q < std::min(pairs, q0 + block_pairs); ++q) {
      acc = std::clamp<int64_t>(acc + pair_sum(q), INT32_MIN, INT32_MAX);
    }
    saturated += acc == INT32_MAX || acc == INT32_MIN;
    total += static_cast<float>(acc);
  }
  return total;
}

// A micro-kernel and its tile.
struct Kernel {
  int rows, cols;
  internal::S16Tile tile;
};

// The fastest micro-kernel of `isa` for outputs n columns wide.
Kernel KernelFor(Isa isa, int64_t n) {
  if (isa == Isa::kAvx512 && HasAvx512Vnni()) {
    if (n <= internal::kVnniNarrowCols) {
      return {internal::kVnniNarrowRows, internal::kVnniNarrowCols, internal::TileAvx512VnniNarrow};
    }
    return {internal::kVnniWideRows, internal::kVnniWideCols, internal::TileAvx512VnniWide};
  }
  if (isa >= Isa::kAvx2) return {internal::kAvx2Rows, internal::kAvx2Cols, internal::TileAvx2};
  return {internal::kScalarRows, internal::kScalarCols, internal::TileScalar};
}

// Packs B and multiplies, in parallel over tiles; fill(row_panel, starts) writes where the
// kernel.rows rows of a row panel's A start (S16RowPairs).
template <typename FillStarts>
int64_t Run(const GemmShape& s, const int16_t* b, float scale, float* c, int64_t block_pairs,
            const Kernel& kernel, const int64_t* segment_offsets, int64_t pairs_per_segment,
            int64_t stride, FillStarts fill) {
  const int rows = kernel.rows, cols = kernel.cols;
  const int64_t pairs = (s.k + 1) / 2;
  const int64_t row_panels = (s.m + rows - 1) / rows, col_panels = (s.n + cols - 1) / cols;
  std::span<int16_t> b_packed =
      Scratch<int16_t>(ScratchSlot::kGemmPackedB, col_panels * pairs * cols * 2);
#pragma omp parallel for schedule(static)
  for (int64_t panel = 0; panel < col_panels; ++panel) {
    PackB(s, b, panel * cols, cols, pairs, b_packed.data() + panel * pairs * cols * 2);
  }
  int64_t saturated = 0;
  const int64_t tiles = row_panels * col_panels;
#pragma omp parallel reduction(+ : saturated)
  {
    std::vector<const int16_t*> starts(rows);
    int64_t filled = -1;  // The row panel whose starts these are.
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t rp = t / col_panels, cp = t % col_panels;
      if (rp != filled) {
        fill(rp, starts.data());
        filled = rp;
      }
      const int valid_rows = static_cast<int>(std::min<int64_t>(rows, s.m - rp * rows));
      const int valid_cols = static_cast<int>(std::min<int64_t>(cols, s.n - cp * cols));
      saturated += kernel.tile({starts.data(), segment_offsets, pairs_per_segment, stride},
                               b_packed.data() + cp * pairs * cols * 2, pairs, block_pairs, scale,
                               c + rp * rows * s.n + cp * cols, s.n, valid_rows, valid_cols);
    }
  }
  return saturated;
}

absl::Status CheckShape(const GemmShape& s, int64_t block_pairs) {
  if (s.m <= 0 || s.n <= 0 || s.k <= 0 || block_pairs <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GemmS16: dimensions must be positive, got m=", s.m, " n=", s.n, " k=", s.k,
                     " block_pairs=", block_pairs));
  }
  return absl::OkStatus();
}

}  // namespace

int64_t GemmS16BlockPairs(int word_length) {
  if (word_length >= 15) return 16;
  // Worst-case pair sum: 2 * (2^(WL-1))^2 = 2^(2 WL - 1).
  const int64_t worst_pair = int64_t{1} << (2 * word_length - 1);
  return std::min<int64_t>(128, INT32_MAX / worst_pair);
}

int64_t GemmS16Reference(const GemmShape& s, const int16_t* a, const int16_t* b, float scale,
                         float* c, int64_t block_pairs) {
  int64_t saturated = 0;
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      c[i * s.n + j] =
          ReferenceSum((s.k + 1) / 2, block_pairs,
                       [&](int64_t q) {
                         return int64_t{GemmA(s, a, i, 2 * q)} * GemmB(s, b, 2 * q, j) +
                                int64_t{GemmA(s, a, i, 2 * q + 1)} * GemmB(s, b, 2 * q + 1, j);
                       },
                       saturated) *
          scale;
    }
  }
  return saturated;
}

absl::StatusOr<int64_t> GemmS16(const GemmShape& s, const int16_t* a, const int16_t* b, float scale,
                                float* c, int64_t block_pairs, Isa isa) {
  if (absl::Status status = CheckShape(s, block_pairs); !status.ok()) return status;
  if (isa == Isa::kScalar) return GemmS16Reference(s, a, b, scale, c, block_pairs);
  const Kernel kernel = KernelFor(isa, s.n);
  const int64_t pairs = (s.k + 1) / 2, rows = kernel.rows;
  const int64_t row_panels = (s.m + rows - 1) / rows;
  std::span<int32_t> a_packed =
      Scratch<int32_t>(ScratchSlot::kGemmPackedA, row_panels * pairs * rows);
#pragma omp parallel for schedule(static)
  for (int64_t panel = 0; panel < row_panels; ++panel) {
    PackA(s, a, panel * rows, rows, pairs, a_packed.data() + panel * pairs * rows);
  }
  // One segment per row, pairs a panel's height apart.
  const int64_t no_offset = 0;
  return Run(s, b, scale, c, block_pairs, kernel, &no_offset, pairs, rows,
             [&](int64_t rp, const int16_t** starts) {
               for (int64_t r = 0; r < rows; ++r) {
                 starts[r] = reinterpret_cast<const int16_t*>(&a_packed[rp * pairs * rows + r]);
               }
             });
}

absl::StatusOr<int64_t> GemmS16Implicit(const GemmShape& s, const S16ImplicitRows& a,
                                        const int16_t* b, float scale, float* c,
                                        int64_t block_pairs, Isa isa) {
  if (absl::Status status = CheckShape(s, block_pairs); !status.ok()) return status;
  const int64_t per_segment = a.PairsPerSegment();
  const int64_t segments = static_cast<int64_t>(a.SegmentOffsets().size());
  if (s.a_transposed || s.k != 2 * segments * per_segment) {
    return absl::InvalidArgumentError(absl::StrCat("GemmS16Implicit: k=", s.k, " is not ", segments,
                                                   " segments of ", per_segment, " pairs",
                                                   s.a_transposed ? " (and A is transposed)" : ""));
  }
  const Kernel kernel = KernelFor(isa, s.n);
  return Run(
      s, b, scale, c, block_pairs, kernel, a.SegmentOffsets().data(), per_segment, 1,
      [&](int64_t rp, const int16_t** starts) { a.Starts(rp * kernel.rows, kernel.rows, starts); });
}

namespace internal {

int64_t TileScalar(const S16RowPairs& a, const int16_t* b_panel, int64_t pairs, int64_t block_pairs,
                   float scale, float* c, int64_t ldc, int rows, int cols) {
  int64_t saturated = 0;
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < cols; ++j) {
      c[r * ldc + j] =
          ReferenceSum(
              pairs, block_pairs,
              [&](int64_t q) {
                const int64_t segment = q / a.pairs_per_segment;
                const int64_t offset = a.segment_offsets[segment];
                if (offset == kZeroSegment) return int64_t{0};
                const int16_t* pair =
                    a.starts[r] + offset + 2 * (q - segment * a.pairs_per_segment) * a.stride;
                const int16_t* bq = b_panel + (q * kScalarCols + j) * 2;
                return int64_t{pair[0]} * bq[0] + int64_t{pair[1]} * bq[1];
              },
              saturated) *
          scale;
    }
  }
  return saturated;
}

}  // namespace internal
}  // namespace muppet::kernels
