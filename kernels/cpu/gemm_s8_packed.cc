// The driver of muppet's AVX2 int8 GEMM: packs B, then in parallel over blocks of row panels
// packs A (from memory or unfolded from a convolution's input), records where A held -128, runs
// the micro-kernel over the block's tiles, corrects and stores each tile.
#include <omp.h>

#include <algorithm>
#include <span>
#include <vector>

#include "kernels/cpu/gemm_s8_internal.h"
#include "kernels/cpu/scratch.h"

namespace muppet::kernels::internal {
namespace {

// A from memory.
class MemoryRowPacker final : public S8RowPacker {
 public:
  MemoryRowPacker(const GemmShape& s, const int8_t* a, int64_t k0, int64_t kc)
      : s_(s), a_(a), k0_(k0), kc_(kc) {}

  S8PanelInfo Pack(int64_t panel, int32_t* out,
                   std::vector<S8Correction>& corrections) const override {
    return PackS8A(s_, a_, panel * kS8Rows, k0_, kc_, out, corrections);
  }

 private:
  const GemmShape& s_;
  const int8_t* const a_;
  const int64_t k0_, kc_;
};

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

// Where one block's row panels stand once packed (or found readable in place).
struct BlockPanels {
  std::vector<S8Correction> corrections;  // All the block's, panel after panel.
  std::vector<int64_t> starts;            // Panel p's are [starts[p], starts[p + 1]).
  std::vector<uint8_t> nonnegative, direct;
  std::vector<S8DirectPanel> in_place;
};

// Packs the row panels [p0, p1) into `a_packed` (or finds them readable in place).
void PackBlock(const S8RowPacker& packer, int64_t p0, int64_t p1, int64_t panel_ints,
               int32_t* a_packed, BlockPanels& panels) {
  const int64_t n = p1 - p0;
  panels.corrections.clear();
  panels.starts.assign(n + 1, 0);
  panels.nonnegative.assign(n, 0);
  panels.direct.assign(n, 0);
  panels.in_place.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    bool nonnegative = false;
    if (packer.Direct(p0 + i, panels.in_place[i], nonnegative)) {
      panels.direct[i] = 1;
    } else {
      nonnegative = packer.Pack(p0 + i, a_packed + i * panel_ints, panels.corrections).nonnegative;
    }
    panels.nonnegative[i] = nonnegative;
    panels.starts[i + 1] = static_cast<int64_t>(panels.corrections.size());
  }
}

// Runs the block's tiles against every column panel of B, column panels outermost (a B panel
// stays in L1 while the block's A panels, in L2, pass it).
void RunBlock(const GemmShape& s, const BlockPanels& panels, int64_t p0, int64_t p1,
              const int32_t* a_packed, int64_t panel_ints, const int8_t* b_packed,
              const uint8_t* b_nonnegative, int64_t groups, const S8Output& out) {
  const int64_t col_panels = (s.n + kS8Cols - 1) / kS8Cols;
  for (int64_t cp = 0; cp < col_panels; ++cp) {
    const int8_t* b_panel = b_packed + cp * groups * kS8GroupBytes;
    for (int64_t i = 0; i < p1 - p0; ++i) {
      const S8Signs signs = panels.nonnegative[i] ? S8Signs::kNonNegativeA
                            : b_nonnegative[cp]   ? S8Signs::kNonNegativeB
                                                  : S8Signs::kBoth;
      alignas(32) int32_t acc[kS8Rows * kS8Cols];
      if (panels.direct[i]) {
        TileS8Avx2Direct(signs, panels.in_place[i], b_panel, acc);
      } else {
        TileS8Avx2(signs, a_packed + i * panel_ints, b_panel, groups, acc);
      }
      for (int64_t e = panels.starts[i]; e < panels.starts[i + 1]; ++e) {
        CorrectS8Avx2(b_panel, panels.corrections[e].k, acc + panels.corrections[e].row * kS8Cols);
      }
      Store(acc, (p0 + i) * kS8Rows, cp * kS8Cols, s, out);
    }
  }
}

}  // namespace

void GemmS8Avx2Chunk(const GemmShape& s, const int8_t* a, const int8_t* b, int64_t k0, int64_t kc,
                     const S8Output& out, const S8RowPacker* pack_a, const S8ColPacker* pack_b) {
  const MemoryRowPacker from_memory(s, a, k0, kc);
  const S8RowPacker& packer = pack_a != nullptr ? *pack_a : from_memory;
  const int64_t groups = (kc + 3) / 4;
  const int64_t row_panels = (s.m + kS8Rows - 1) / kS8Rows;
  const int64_t col_panels = (s.n + kS8Cols - 1) / kS8Cols;
  // B whole, by the calling thread's team; its panels' signs as bytes (threads write apart).
  std::span<int8_t> b_packed =
      Scratch<int8_t>(ScratchSlot::kGemmPackedB, col_panels * groups * kS8GroupBytes);
  thread_local std::vector<uint8_t> b_signs;
  b_signs.assign(col_panels, 0);
  uint8_t* b_nonnegative = b_signs.data();  // Not the thread_local: each thread has its own.
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < col_panels; ++q) {
    int8_t* panel = b_packed.data() + q * groups * kS8GroupBytes;
    b_nonnegative[q] =
        (pack_b != nullptr ? pack_b->Pack(q, panel) : PackS8B(s, b, q * kS8Cols, k0, kc, panel))
            .nonnegative;
  }
  // A in blocks of row panels of ~64 KiB, so that a block stays in L2; as many equal blocks as
  // make static scheduling give every thread the same work.
  const int64_t panel_ints = groups * kS8Rows;
  const int64_t threads = omp_get_max_threads();
  const int64_t most = std::max<int64_t>(1, (64 << 10) / (4 * panel_ints));
  const int64_t blocks = ((row_panels + most - 1) / most + threads - 1) / threads * threads;
  const int64_t block = (row_panels + blocks - 1) / blocks;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t p0 = std::min(row_panels, blk * block), p1 = std::min(row_panels, p0 + block);
    // This thread's buffers.
    std::span<int32_t> a_packed = Scratch<int32_t>(ScratchSlot::kGemmPackedA, block * panel_ints);
    thread_local BlockPanels panels;
    PackBlock(packer, p0, p1, panel_ints, a_packed.data(), panels);
    RunBlock(s, panels, p0, p1, a_packed.data(), panel_ints, b_packed.data(), b_nonnegative, groups,
             out);
  }
}

}  // namespace muppet::kernels::internal
