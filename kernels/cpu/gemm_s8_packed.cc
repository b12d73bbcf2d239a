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
    } else if (out.bias != nullptr) {
      float* dst = out.f32 + offset;
      const float* bias = out.bias + j0;
      for (int j = 0; j < cols; ++j) dst[j] = static_cast<float>(src[j]) * out.scale + bias[j];
    } else {
      float* dst = out.f32 + offset;
      for (int j = 0; j < cols; ++j) dst[j] = static_cast<float>(src[j]) * out.scale;
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
    b_nonnegative[q] = (pack_b != nullptr ? pack_b->Pack(q, panel)
                                          : PackS8B(s, b, q * kS8Cols, k0, kc, panel))
                           .nonnegative;
  }
  // A in blocks of row panels of ~64 KiB, so that a block stays in L2 while every column panel
  // of B (in L1) passes over it; at least as many blocks as threads.
  const int64_t panel_ints = groups * kS8Rows;
  const int64_t threads = omp_get_max_threads();
  const int64_t most = std::max<int64_t>(1, (64 << 10) / (4 * panel_ints));
  // A multiple of the threads, so that static scheduling gives every thread equal work.
  const int64_t blocks = ((row_panels + most - 1) / most + threads - 1) / threads * threads;
  const int64_t block = (row_panels + blocks - 1) / blocks;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t p0 = std::min(row_panels, blk * block), p1 = std::min(row_panels, p0 + block);
    // This thread's buffers: the block's packed panels, their -128 codes and signs.
    std::span<int32_t> a_packed = Scratch<int32_t>(ScratchSlot::kGemmPackedA, block * panel_ints);
    thread_local std::vector<S8Correction> corrections;
    thread_local std::vector<int64_t> starts;
    thread_local std::vector<uint8_t> a_nonnegative, is_direct;
    thread_local std::vector<S8DirectPanel> direct;
    corrections.clear();
    starts.assign(p1 - p0 + 1, 0);
    a_nonnegative.assign(p1 - p0, 0);
    is_direct.assign(p1 - p0, 0);
    direct.resize(p1 - p0);
    for (int64_t p = p0; p < p1; ++p) {
      bool nonnegative = false;
      if (packer.Direct(p, direct[p - p0], nonnegative)) {
        is_direct[p - p0] = 1;
      } else {
        nonnegative =
            packer.Pack(p, a_packed.data() + (p - p0) * panel_ints, corrections).nonnegative;
      }
      a_nonnegative[p - p0] = nonnegative;
      starts[p - p0 + 1] = static_cast<int64_t>(corrections.size());
    }
    for (int64_t cp = 0; cp < col_panels; ++cp) {
      const int8_t* b_panel = b_packed.data() + cp * groups * kS8GroupBytes;
      for (int64_t p = p0; p < p1; ++p) {
        const S8Signs signs = a_nonnegative[p - p0] ? S8Signs::kNonNegativeA
                              : b_nonnegative[cp]   ? S8Signs::kNonNegativeB
                                                    : S8Signs::kBoth;
        alignas(32) int32_t acc[kS8Rows * kS8Cols];
        if (is_direct[p - p0]) {
          TileS8Avx2Direct(signs, direct[p - p0], b_panel, acc);
        } else {
          TileS8Avx2(signs, a_packed.data() + (p - p0) * panel_ints, b_panel, groups, acc);
        }
        for (int64_t e = starts[p - p0]; e < starts[p - p0 + 1]; ++e) {
          CorrectS8Avx2(b_panel, corrections[e].k, acc + corrections[e].row * kS8Cols);
        }
        Store(acc, p * kS8Rows, cp * kS8Cols, s, out);
      }
    }
  }
}

}  // namespace muppet::kernels::internal
