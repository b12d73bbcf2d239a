#include "kernels/cpu/conv_blocked.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "kernels/cpu/gemm_s16.h"
#include "kernels/cpu/gemm_s8.h"
#include "kernels/cpu/gemm_s8_internal.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/padded_images.h"
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

// Copies 9-16-bit codes as they are, padding with code 0.
PaddedImages<int16_t> PaddedCodes(const ConvGeometry& g, const int16_t* x) {
  return PaddedImages<int16_t>(g, x, int16_t{0}, [](int16_t code) { return code; });
}

// The patches of the output pixels as implicit rows of the int16 GEMM: a segment per kernel
// tap, the C channels of one input pixel (C even, so pairs never straddle taps).
class S16Patches final : public S16ImplicitRows {
 public:
  S16Patches(const ConvGeometry& g, const int16_t* x)
      : g_(g), images_(PaddedCodes(g, x)), walks_(omp_get_max_threads()) {
    for (int64_t t = 0; t < g.kernel * g.kernel; ++t) {
      offsets_.push_back(images_.live_tap(t) ? images_.tap_offsets()[t] : kZeroSegment);
    }
  }

  int64_t PairsPerSegment() const override { return g_.c / 2; }
  std::span<const int64_t> SegmentOffsets() const override { return offsets_; }

  // Each thread asks for its row panels in order, so its walk goes on from where it stopped.
  void Starts(int64_t i0, int count, const int16_t** starts) const override {
    ThreadWalk& mine = walks_[omp_get_thread_num()];
    if (!mine.walk || mine.next != i0) mine.walk.emplace(images_, i0);
    mine.walk->Next(std::min<int64_t>(count, g_.n * g_.out_h() * g_.out_w() - i0), count, starts);
    mine.next = i0 + count;
  }

 private:
  struct ThreadWalk {
    std::optional<PaddedImages<int16_t>::Walk> walk;
    int64_t next = 0;  // The pixel the walk stands at.
  };

  const ConvGeometry g_;
  const PaddedImages<int16_t> images_;
  std::vector<int64_t> offsets_;           // The images' tap offsets, kZeroSegment for dead taps.
  mutable std::vector<ThreadWalk> walks_;  // One per OpenMP thread, each its own.
};

}  // namespace

bool S16Implicit(const ConvGeometry& g) { return g.c % 2 == 0; }

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
  if (!int8 && S16Implicit(g)) {
    // No im2col rows and no packed copy of them: 2-2.5x faster on resnet20's layers
    // (PERFORMANCE.md).
    return GemmS16Implicit({.m = rows, .n = g.o, .k = k, .b_transposed = true},
                           S16Patches(g, qx.s16.data()), qw.s16.data(), scale, y, block_pairs);
  }
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

bool S16WeightsInPlace(const ConvGeometry& g) {
  return g.c % 16 == 0 && ActiveIsa() == Isa::kAvx512 && HasAvx512Vnni();
}

namespace {

// One chunk of backward-weights from im2col rows, computed transposed, dW^T (K x O) =
// cols^T (K x pixels) * dY (pixels x O), so that the GEMM's tiles run along the long K side
// rather than the few output channels; then transposed into dw.
int64_t WeightsChunkFromColumns(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                                int64_t begin, int64_t n, float scale, int64_t block_pairs,
                                float* dw) {
  const int64_t k = g.kernel * g.kernel * g.c;
  std::span<int16_t> cols = Scratch<int16_t>(ScratchSlot::kIm2Col, n * k);
  Im2ColRows(g, qx.s16.data(), begin, begin + n, cols.data());
  std::span<float> transposed = Scratch<float>(ScratchSlot::kBlockProduct, k * g.o);
  // Inside the chunks' parallel loop the GEMM's own parallel regions run on one thread.
  const int64_t saturated = GemmS16({.m = k, .n = g.o, .k = n, .a_transposed = true}, cols.data(),
                                    qdy.s16.data() + begin * g.o, scale, transposed.data(),
                                    block_pairs)
                                .value_or(0);  // Shapes are valid by construction.
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t o = 0; o < g.o; ++o) dw[o * k + j] = transposed[j * g.o + o];
  }
  return saturated;
}

// The same chunk read in place (S16WeightsInPlace): dy's pixel pairs interleaved once, and
// where each pixel's patch begins.
int64_t WeightsChunkInPlace(const ConvGeometry& g, const Quantized& qdy,
                            const PaddedImages<int16_t>& x, const std::vector<int64_t>& units,
                            int64_t begin, int64_t n, float scale, int64_t block_pairs, float* dw,
                            bool parallel) {
  const InPlacePatches<int16_t> patches =
      PatchesOf(g, x, units, begin, n, (n + 1) / 2 * 2, kS16WeightsRows);
  std::span<int32_t> dy_pairs =
      Scratch<int32_t>(ScratchSlot::kPixelPairs, (n + 1) / 2 * patches.padded_outputs);
  InterleavePairsAvx512(qdy.s16.data() + begin * g.o, n, g.o, patches.padded_outputs,
                        dy_pairs.data());
  return BackwardWeightsChunkAvx512(
      {.x = patches, .dy_pairs = dy_pairs.data(), .block_pairs = block_pairs, .scale = scale}, dw,
      parallel);
}

}  // namespace

int64_t BackwardWeightsInt16(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                             float* dw) {
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  // Fixed chunks, so that the order of the additions does not depend on the thread count;
  // small enough that the threads' shares stay even on small layers.
  const int64_t chunks = (rows + kConvWeightsChunkPixels - 1) / kConvWeightsChunkPixels;
  const float scale = std::ldexp(1.0f, -(qdy.exponent + qx.exponent));
  const int64_t block_pairs = GemmS16BlockPairs(qdy.word_length);
  std::optional<PaddedImages<int16_t>> padded;
  std::vector<int64_t> units;  // In place: those of live taps.
  if (S16WeightsInPlace(g)) {
    padded.emplace(PaddedCodes(g, qx.s16.data()));
    units = LiveUnits(*padded, g.kernel * g.kernel, g.c);
  }
  std::span<float> partial = Scratch<float>(ScratchSlot::kColumnGradients, chunks * g.o * k);
  // Chunk c's scaled product into its place in `partial`: in place, spread over the threads if
  // `parallel`.
  const auto chunk_product = [&](int64_t c, bool parallel) {
    const int64_t begin = c * kConvWeightsChunkPixels,
                  n = std::min(kConvWeightsChunkPixels, rows - begin);
    float* out = partial.data() + c * g.o * k;
    return padded ? WeightsChunkInPlace(g, qdy, *padded, units, begin, n, scale, block_pairs, out,
                                        parallel)
                  : WeightsChunkFromColumns(g, qdy, qx, begin, n, scale, block_pairs, out);
  };
  int64_t saturated = 0;
  if (padded && SpreadEachBlock(chunks)) {
    // In place: one chunk after another, each on every thread.
    for (int64_t c = 0; c < chunks; ++c) saturated += chunk_product(c, true);
  } else {
#pragma omp parallel for schedule(static) reduction(+ : saturated)
    for (int64_t c = 0; c < chunks; ++c) saturated += chunk_product(c, false);
  }
  // Add the chunks in order.
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < g.o * k; ++j) {
    float total = partial[j];
    for (int64_t c = 1; c < chunks; ++c) total += partial[c * g.o * k + j];
    dw[j] = total;
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
