#include "kernels/cpu/conv_blocked.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/gemm_s16.h"
#include "kernels/cpu/gemm_s8.h"
#include "kernels/cpu/gemm_s8_internal.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/scratch.h"

namespace muppet::kernels::internal {

// Blocks win where the im2col matrix is large next to the weights, which every block packs
// again: resnet20's 16- and 32-channel layers (0.1-0.3x -> 0.25-0.55x FP32); one GEMM wins on
// wide, small layers like alexnet's (its 12-bit epoch took 0.52x FP32 with blocks, 0.90x
// without; PERFORMANCE.md).
bool PreferBlocks(int64_t rows, int64_t channels) { return rows >= 256 * channels; }

namespace {

// The implicit GEMM of muppet's AVX2 int8 route: im2col rows unfolded straight into packed
// panels, never written out (PackS8ConvPanel). Needs C % 16 == 0.
// Panels whose four patches lie inside the image are not packed at all but read in place, when
// no code of x is -128 (which the tile could not take unpacked).
class ConvRowPacker final : public S8RowPacker {
 public:
  ConvRowPacker(const ConvGeometry& g, const Quantized& qx)
      : shape_{g.n, g.h, g.w, g.c, g.kernel, g.stride, g.padding, g.out_h(), g.out_w()},
        x_(qx.s8.data()),
        min_(*std::min_element(qx.s8.begin(), qx.s8.end())) {
    for (int64_t ky = 0; ky < g.kernel; ++ky) {
      for (int64_t kx = 0; kx < g.kernel; ++kx) tap_offsets_.push_back((ky * g.w + kx) * g.c);
    }
  }

  S8PanelInfo Pack(int64_t panel, int32_t* out,
                   std::vector<S8Correction>& corrections) const override {
    return PackS8ConvPanel(shape_, x_, panel, out, corrections);
  }

  bool Direct(int64_t panel, S8DirectPanel& out, bool& nonnegative) const override {
    if (min_ == -128) return false;
    for (int r = 0; r < kS8Rows; ++r) {
      const S8Patch patch = S8PatchOf(shape_, x_, panel * kS8Rows + r);
      if (!patch.inside) return false;
      out.first[r] = patch.image + (patch.iy0 * shape_.w + patch.ix0) * shape_.c;
    }
    out.tap_offsets = tap_offsets_.data();
    out.taps = static_cast<int64_t>(tap_offsets_.size());
    out.quads = shape_.c / 4;
    nonnegative = min_ >= 0;
    return true;
  }

 private:
  const S8ConvShape shape_;
  const int8_t* const x_;
  const int8_t min_;  // Of every code of x.
  std::vector<int64_t> tap_offsets_;
};

}  // namespace

// Forward convolution in blocks of output rows: each thread unfolds a block of im2col rows that
// fits its cache and multiplies it by the weights at once, so the full im2col matrix (KH x KW
// times the input) and its packed copy never go through memory. Row results do not depend on
// the blocking (every output element sums its whole reduction in one fixed block order), so the
// result is the same for any thread count.
absl::StatusOr<int64_t> ForwardBlocked(const ConvGeometry& g, const Quantized& qx,
                                       const Quantized& qw, float* y) {
  const bool int8 = qx.word_length <= 8;
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  // ~128 KiB of codes per block, but at least 16 rows per output channel: every block packs
  // the O x K weights again, which must stay small next to the block's multiply-adds. Then as
  // many equal blocks as make the threads' shares equal, in whole tiles of the GEMM's rows.
  constexpr int64_t kBlockBytes = 128 << 10;
  const int64_t code_bytes = int8 ? 1 : 2, tile_rows = int8 ? 4 : 12;
  const int64_t max_block =
      std::clamp<int64_t>(std::max(kBlockBytes / (code_bytes * k), 16 * g.o), 96, 8192);
  const int64_t threads = omp_get_max_threads();
  const int64_t blocks = ((rows + max_block - 1) / max_block + threads - 1) / threads * threads;
  const int64_t block = ((rows + blocks - 1) / blocks + tile_rows - 1) / tile_rows * tile_rows;
  const float scale = std::ldexp(1.0f, -(qx.exponent + qw.exponent));
  if (int8 && S8ImplicitGemm(g.c)) {
    // The AVX2 driver blocks by itself; unfolding into its panels skips the im2col copy (about
    // 10% of an 8-bit resnet20 step on that route, PERFORMANCE.md).
    const ConvRowPacker unfold(g, qx);
    GemmS8Avx2Chunk({.m = rows, .n = g.o, .k = k, .b_transposed = true}, nullptr, qw.s8.data(), 0,
                    k, {.f32 = y, .scale = scale}, &unfold);
    return 0;
  }
  const int64_t block_pairs = GemmS16BlockPairs(qx.word_length);
  int64_t saturated = 0;
  absl::Status status;
#pragma omp parallel for schedule(static) reduction(+ : saturated)
  for (int64_t begin = 0; begin < rows; begin += block) {
    const int64_t n = std::min(block, rows - begin);
    const GemmShape shape{.m = n, .n = g.o, .k = k, .b_transposed = true};
    // Inside this parallel loop the GEMMs' own parallel regions run on one thread.
    absl::Status s;
    if (int8) {
      std::span<int8_t> cols = Scratch<int8_t>(ScratchSlot::kIm2Col, block * k);
      Im2ColRows(g, qx.s8.data(), begin, begin + n, cols.data());
      s = GemmS8(shape, cols.data(), qw.s8.data(), scale, y + begin * g.o);
    } else {
      std::span<int16_t> cols = Scratch<int16_t>(ScratchSlot::kIm2Col, block * k);
      Im2ColRows(g, qx.s16.data(), begin, begin + n, cols.data());
      absl::StatusOr<int64_t> gemm =
          GemmS16(shape, cols.data(), qw.s16.data(), scale, y + begin * g.o, block_pairs);
      if (gemm.ok()) saturated += *gemm;
      s = gemm.status();
    }
    if (!s.ok()) {
#pragma omp critical
      if (status.ok()) status = s;
    }
  }
  if (!status.ok()) return status;
  return saturated;
}

// 9-16-bit backward-weights in blocks of rows, computed transposed, dW^T (K x O) =
// sum over blocks of cols_block^T (K x rows) * dY_block (rows x O), so that the GEMM's tiles run
// along the long K x KH x KW side rather than the few output channels. Each block's product is
// kept apart and the blocks are added in block order, so the result does not depend on the
// thread count; nor does the full im2col matrix ever go through memory.
int64_t BackwardWeightsInt16(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                             float* dw) {
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  // Fixed blocks, so that the order of the additions does not depend on the thread count;
  // small enough that the threads' shares stay even on small layers.
  constexpr int64_t kBlockRows = 1024;
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  const float scale = std::ldexp(1.0f, -(qdy.exponent + qx.exponent));
  const int64_t block_pairs = GemmS16BlockPairs(qdy.word_length);
  std::span<float> partial = Scratch<float>(ScratchSlot::kColumnGradients, blocks * k * g.o);
  int64_t saturated = 0;
#pragma omp parallel for schedule(static) reduction(+ : saturated)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlockRows, n = std::min(kBlockRows, rows - begin);
    std::span<int16_t> cols = Scratch<int16_t>(ScratchSlot::kIm2Col, kBlockRows * k);
    Im2ColRows(g, qx.s16.data(), begin, begin + n, cols.data());
    // Inside this parallel loop the GEMM's own parallel regions run on one thread.
    saturated += GemmS16({.m = k, .n = g.o, .k = n, .a_transposed = true}, cols.data(),
                         qdy.s16.data() + begin * g.o, scale, partial.data() + b * k * g.o,
                         block_pairs)
                     .value_or(0);  // Shapes are valid by construction.
  }
  // Add the blocks in order into block 0, contiguously, then transpose K x O into O x K.
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < k; ++j) {
    float* total = partial.data() + j * g.o;
    for (int64_t b = 1; b < blocks; ++b) {
      const float* block = partial.data() + (b * k + j) * g.o;
      for (int64_t o = 0; o < g.o; ++o) total[o] += block[o];
    }
    for (int64_t o = 0; o < g.o; ++o) dw[o * k + j] = total[o];
  }
  return saturated;
}

Quantized FlippedWeights(const ConvGeometry& g, const Quantized& qw) {
  Quantized f{.word_length = qw.word_length, .exponent = qw.exponent};
  const int64_t kk = g.kernel;
  const auto flip = [&](const auto& in, auto& out) {
    out.resize(in.size());
    for (int64_t o = 0; o < g.o; ++o)
      for (int64_t ky = 0; ky < kk; ++ky)
        for (int64_t kx = 0; kx < kk; ++kx)
          for (int64_t c = 0; c < g.c; ++c) {
            out[((c * kk + (kk - 1 - ky)) * kk + (kk - 1 - kx)) * g.o + o] =
                in[((o * kk + ky) * kk + kx) * g.c + c];
          }
  };
  if (qw.word_length <= 8) {
    flip(qw.s8, f.s8);
  } else {
    flip(qw.s16, f.s16);
  }
  return f;
}

ConvGeometry TransposedGeometry(const ConvGeometry& g) {
  return {.n = g.n,
          .h = g.out_h(),
          .w = g.out_w(),
          .c = g.o,
          .o = g.c,
          .kernel = g.kernel,
          .stride = 1,
          .padding = g.kernel - 1 - g.padding};
}

}  // namespace muppet::kernels::internal
