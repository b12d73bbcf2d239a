// The driver of muppet's AVX2 int8 GEMM: packs both operands, records where A held -128, runs
// the micro-kernel over tiles in parallel, corrects and stores each tile.
#include <algorithm>
#include <span>
#include <vector>

#include "kernels/cpu/gemm_s8_internal.h"
#include "kernels/cpu/scratch.h"

namespace muppet::kernels::internal {
namespace {

// The -128 codes of row panel `panel` (chunk-local k), in the order PackS8A met them.
void FindCorrections(const GemmShape& s, const int8_t* a, int64_t panel, int64_t k0, int64_t kc,
                     S8Correction* out) {
  for (int r = 0; r < kS8Rows; ++r) {
    const int64_t i = panel * kS8Rows + r;
    if (i >= s.m) break;
    for (int64_t p = 0; p < kc; ++p) {
      if (GemmA(s, a, i, k0 + p) == -128) *out++ = {static_cast<int32_t>(p), r};
    }
  }
}

void Store(const int32_t* acc, int64_t i0, int64_t j0, const GemmShape& s, const S8Output& out) {
  const int rows = static_cast<int>(std::min<int64_t>(kS8Rows, s.m - i0));
  const int cols = static_cast<int>(std::min<int64_t>(kS8Cols, s.n - j0));
  for (int r = 0; r < rows; ++r) {
    const int32_t* src = acc + r * kS8Cols;
    const int64_t offset = (i0 + r) * s.n + j0;
    if (out.s32 != nullptr) {
      std::copy(src, src + cols, out.s32 + offset);
    } else if (out.accumulate) {
      float* dst = out.f32 + offset;
      for (int j = 0; j < cols; ++j) dst[j] = dst[j] + static_cast<float>(src[j]) * out.scale;
    } else {
      float* dst = out.f32 + offset;
      for (int j = 0; j < cols; ++j) dst[j] = static_cast<float>(src[j]) * out.scale;
    }
  }
}

}  // namespace

void GemmS8Avx2Chunk(const GemmShape& s, const int8_t* a, const int8_t* b, int64_t k0, int64_t kc,
                     const S8Output& out) {
  const int64_t groups = (kc + 3) / 4;
  const int64_t row_panels = (s.m + kS8Rows - 1) / kS8Rows;
  const int64_t col_panels = (s.n + kS8Cols - 1) / kS8Cols;
  std::span<int32_t> a_packed =
      Scratch<int32_t>(ScratchSlot::kGemmPackedA, row_panels * groups * kS8Rows);
  std::span<int8_t> b_packed =
      Scratch<int8_t>(ScratchSlot::kGemmPackedB, col_panels * groups * kS8GroupBytes);
  // starts[p + 1] - starts[p]: the -128 codes of row panel p; then prefix sums. The calling
  // thread's buffers, named through plain pointers: inside the parallel regions a thread_local
  // name would mean each thread's own.
  thread_local std::vector<int64_t> starts_buffer;
  thread_local std::vector<S8Correction> corrections_buffer;
  // Which panels hold no negative code (bytes, not vector<bool>: threads write them apart).
  thread_local std::vector<uint8_t> signs_buffer;
  starts_buffer.assign(row_panels + 1, 0);
  signs_buffer.assign(row_panels + col_panels, 0);
  int64_t* starts = starts_buffer.data();
  uint8_t* a_nonnegative = signs_buffer.data();
  uint8_t* b_nonnegative = a_nonnegative + row_panels;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < row_panels; ++p) {
    const S8PanelInfo info =
        PackS8A(s, a, p * kS8Rows, k0, kc, a_packed.data() + p * groups * kS8Rows);
    starts[p + 1] = info.clamped;
    a_nonnegative[p] = info.nonnegative;
  }
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < col_panels; ++q) {
    b_nonnegative[q] =
        PackS8B(s, b, q * kS8Cols, k0, kc, b_packed.data() + q * groups * kS8GroupBytes)
            .nonnegative;
  }
  for (int64_t p = 0; p < row_panels; ++p) starts[p + 1] += starts[p];
  if (starts[row_panels] > 0) {
    corrections_buffer.resize(starts[row_panels]);
    S8Correction* found = corrections_buffer.data();
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t p = 0; p < row_panels; ++p) {
      if (starts[p + 1] > starts[p]) {
        FindCorrections(s, a, p, k0, kc, found + starts[p]);
      }
    }
  }
  const S8Correction* corrections = corrections_buffer.data();
  // Column panels outermost: consecutive tiles of a thread share B's panel, which stays in L1.
  const int64_t tiles = row_panels * col_panels;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t cp = t / row_panels, rp = t % row_panels;
    const int8_t* b_panel = b_packed.data() + cp * groups * kS8GroupBytes;
    alignas(32) int32_t acc[kS8Rows * kS8Cols];
    const S8Signs signs = a_nonnegative[rp]   ? S8Signs::kNonNegativeA
                          : b_nonnegative[cp] ? S8Signs::kNonNegativeB
                                              : S8Signs::kBoth;
    TileS8Avx2(signs, a_packed.data() + rp * groups * kS8Rows, b_panel, groups, acc);
    for (int64_t e = starts[rp]; e < starts[rp + 1]; ++e) {
      CorrectS8Avx2(b_panel, corrections[e].k, acc + corrections[e].row * kS8Cols);
    }
    Store(acc, rp * kS8Rows, cp * kS8Cols, s, out);
  }
}

}  // namespace muppet::kernels::internal
