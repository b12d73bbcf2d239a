#include "kernels/cpu/conv_int8.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "kernels/cpu/gemm_s8.h"
#include "kernels/cpu/gemm_s8_internal.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/padded_images.h"
#include "kernels/cpu/scratch.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace muppet::kernels::internal {
namespace {

dnnl::engine& DnnlEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

// oneDNN's direct int8 primitives, one per pass and geometry, created once: nhwc s8 codes in,
// the exact integer sums out as FP32. The scale 2^-(sa + sb) is applied afterwards
// (ScaleAndAddBias): a power of two, so the result is bit-identical to scaling inside, and one
// primitive serves every exponent. (oneDNN 2.6 takes no run-time output scale for int8
// convolutions; a primitive per exponent meant a JIT compilation whenever a layer's exponents
// moved.) Weights are reordered from their plain codes into the layout the primitive prefers
// on every call (they change every step; they are small).
struct DirectInt8 {
  dnnl::primitive primitive;
  dnnl::memory::desc src, weights_plain, weights, dst;
};

DirectInt8 MakeDirectInt8(const ConvGeometry& g, Pass pass) {
  using dnnl::memory;
  const memory::desc x({g.n, g.c, g.h, g.w}, memory::data_type::s8, memory::format_tag::nhwc);
  const memory::desc y({g.n, g.o, g.out_h(), g.out_w()}, memory::data_type::s8,
                       memory::format_tag::nhwc);
  const memory::dims strides = {g.stride, g.stride}, pad = {g.padding, g.padding};
  if (pass == Pass::kForward) {
    const memory::dims wdims = {g.o, g.c, g.kernel, g.kernel};
    const memory::desc dst({g.n, g.o, g.out_h(), g.out_w()}, memory::data_type::f32,
                           memory::format_tag::nhwc);
    dnnl::convolution_forward::primitive_desc pd(
        dnnl::convolution_forward::desc(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, x,
            memory::desc(wdims, memory::data_type::s8, memory::format_tag::any), dst, strides, pad,
            pad),
        DnnlEngine());
    return {dnnl::convolution_forward(pd), x,
            memory::desc(wdims, memory::data_type::s8, memory::format_tag::ohwi), pd.weights_desc(),
            dst};
  }
  // Backward-data is the forward pass of the transposed convolution ("deconvolution"), whose
  // weights are the convolution's with input and output channels swapped (no spatial flip):
  // dims C x O x KH x KW over the same O x KH x KW x C storage.
  const memory::dims wdims = {g.c, g.o, g.kernel, g.kernel};
  const memory::desc plain(wdims, memory::data_type::s8,
                           {1, g.kernel * g.kernel * g.c, g.kernel * g.c, g.c});
  const memory::desc dst({g.n, g.c, g.h, g.w}, memory::data_type::f32, memory::format_tag::nhwc);
  const memory::dims pad_r = {DeconvRightPadding(g, g.h, g.out_h()),
                              DeconvRightPadding(g, g.w, g.out_w())};
  dnnl::deconvolution_forward::primitive_desc pd(
      dnnl::deconvolution_forward::desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct, y,
          memory::desc(wdims, memory::data_type::s8, memory::format_tag::any), dst, strides, pad,
          pad_r),
      DnnlEngine());
  return {dnnl::deconvolution_forward(pd), y, plain, pd.weights_desc(), dst};
}

const DirectInt8& DirectInt8For(const ConvGeometry& g, Pass pass) {
  static std::mutex mu;
  static auto* cache = new std::map<std::array<int64_t, 9>, DirectInt8>;
  const std::array<int64_t, 9> key = {
      g.n, g.h, g.w, g.c, g.o, g.kernel, g.stride, g.padding, static_cast<int64_t>(pass)};
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache->find(key); it != cache->end()) return it->second;
  return cache->emplace(key, MakeDirectInt8(g, pass)).first->second;
}

// B of one backward-weights block on the AVX2 route: the block's im2col rows unfolded straight
// into packed column panels (the rows' patches found once per block). Needs C % 16 == 0.
class ConvColumnPacker final : public S8ColPacker {
 public:
  ConvColumnPacker(const ConvGeometry& g, const int8_t* x, int64_t begin, int64_t rows)
      : shape_{g.n, g.h, g.w, g.c, g.kernel, g.stride, g.padding, g.out_h(), g.out_w()},
        rows_(rows) {
    thread_local std::vector<S8Patch> buffer;  // Reused: one per block would allocate.
    buffer.resize(rows);
    for (int64_t r = 0; r < rows; ++r) buffer[r] = S8PatchOf(shape_, x, begin + r);
    patches_ = buffer.data();
  }

  S8PanelInfo Pack(int64_t panel, int8_t* out) const override {
    return PackS8ConvColumns(shape_, patches_, rows_, panel * kS8Cols, out);
  }

 private:
  const S8ConvShape shape_;
  const int64_t rows_;
  const S8Patch* patches_;
};

// dW block (O x K) = dY block^T (dY is stored n x O) x cols (n x K), exact in int32.
absl::Status BlockProduct(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                          int64_t begin, int64_t n, int8_t* cols, int32_t* product) {
  const int64_t k = g.kernel * g.kernel * g.c;
  const GemmShape shape{.m = g.o, .n = k, .k = n, .a_transposed = true};
  const int8_t* dy = qdy.s8.data() + begin * g.o;
  if (S8ImplicitGemm(g.c)) {
    const ConvColumnPacker unfold(g, qx.s8.data(), begin, n);
    GemmS8Avx2Chunk(shape, dy, nullptr, 0, n, {.s32 = product}, nullptr, &unfold);
    return absl::OkStatus();
  }
  Im2ColRows(g, qx.s8.data(), begin, begin + n, cols);
  return GemmS8S32(shape, dy, cols, product);
}

// The same block read in place (S8WeightsInPlace): dy's pixel quads interleaved once, with their
// sums, and where each pixel's patch begins in x's shifted, padded images.
void BlockProductInPlace(const ConvGeometry& g, const Quantized& qdy,
                         const PaddedImages<uint8_t>& x, const std::vector<int64_t>& units,
                         int64_t begin, int64_t n, int32_t* product, bool parallel) {
  const InPlacePatches<uint8_t> patches =
      PatchesOf(g, x, units, begin, n, (n + 3) / 4 * 4, kS8WeightsRows);
  std::span<int32_t> quads =
      Scratch<int32_t>(ScratchSlot::kPixelPairs, (n + 3) / 4 * patches.padded_outputs);
  const int8_t* dy = qdy.s8.data() + begin * g.o;
  InterleaveQuadsAvx512(dy, n, g.o, patches.padded_outputs, quads.data());
  std::vector<int64_t> sums(g.o);
  ColumnSumsAvx512(dy, n, g.o, sums.data());
  BackwardWeightsBlockAvx512({.x = patches, .dy_quads = quads.data(), .dy_sums = sums.data()},
                             product, parallel);
}

}  // namespace

namespace {

// The AVX-512 kernel's tiles of kS8ForwardRows pixels, each thread walking its own run of them;
// with a y_range, each tile's outputs scanned right after they are written, while in cache.
// (This and RunAmx each open their own parallel region: one helper taking the per-thread loop as a
// lambda made the 8-bit resnet20 epoch 4% slower, its captured constants reloaded through
// references after every store, PERFORMANCE.md.)
void RunAvx512(const ConvGeometry& g, const PaddedImages<uint8_t>& x, const S8ForwardPass& pass,
               RangeScan* y_range) {
  const int64_t pixels = g.n * g.out_h() * g.out_w();
  const int64_t tiles = (pixels + kS8ForwardRows - 1) / kS8ForwardRows;
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const int64_t first = tiles * thread / threads, last = tiles * (thread + 1) / threads;
    PaddedImages<uint8_t>::Walk walk(x, first * kS8ForwardRows);
    const uint8_t* patches[kS8ForwardRows];
    RangeScan scan;
    for (int64_t t = first; t < last; ++t) {
      const int64_t p0 = t * kS8ForwardRows;
      const int rows = static_cast<int>(std::min<int64_t>(kS8ForwardRows, pixels - p0));
      walk.Next(rows, kS8ForwardRows, patches);
      ForwardInt8Avx512(pass, p0, patches, rows);
      if (y_range != nullptr) scan.Add(pass.y + p0 * g.o, rows * g.o);
    }
    if (y_range != nullptr) {
#pragma omp critical
      y_range->Merge(scan);
    }
  }
}

// The AMX kernel's tiles of 16 patches a fixed step apart, each thread a run of them. At stride 1
// a tile takes 16 consecutive pixels of the padded images' width (consecutive patches, C codes
// apart, across output rows), those past an output row's end computed and dropped: 2 of every 9
// at 7x7 outputs, where tiles of one output row each dropped 9 of 16. At larger strides a tile
// takes up to 16 pixels of one output row. PaddedImages' tail keeps every read inside.
void RunAmx(const ConvGeometry& g, const PaddedImages<uint8_t>& x, const S8ForwardPass& pass,
            RangeScan* y_range) {
  const int64_t oh = g.out_h(), ow = g.out_w(), chunk = AmxChunk(pass.segment_codes);
  const bool across_rows = g.stride == 1;
  const int64_t width = across_rows ? g.w + 2 * g.padding : ow;  // Pixels a row, as tiled.
  const int64_t row_tiles = (ow + 15) / 16;                      // Where tiles keep to a row.
  const int64_t per_image = across_rows ? (oh * width + 15) / 16 : oh * row_tiles;
  const int64_t tiles = g.n * per_image, step = g.stride * g.c;
  const int at_once = AmxTilesAtOnce(pass.units);
  const int64_t items = (tiles + at_once - 1) / at_once;
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const int64_t first = items * thread / threads, last = items * (thread + 1) / threads;
    AmxConfigure(chunk);
    RangeScan scan;
    int64_t pixels[4][16];
    const uint8_t* firsts[4];
    for (int64_t item = first; item < last; ++item) {
      const int count = static_cast<int>(std::min<int64_t>(at_once, tiles - item * at_once));
      int64_t stored = 0, lowest = -1;
      for (int k = 0; k < count; ++k) {
        const int64_t t = item * at_once + k, n = t / per_image, i = t % per_image;
        // The tile's first pixel: (oy, ox), as laid out `width` pixels a row.
        const int64_t oy = across_rows ? i * 16 / width : i / row_tiles;
        const int64_t ox = across_rows ? i * 16 % width : i % row_tiles * 16;
        firsts[k] = x.Patch(n, oy, ox);
        int64_t y = oy, xx = ox;
        for (int r = 0; r < 16; ++r) {
          const bool real = y < oh && xx < ow && (across_rows || r < ow - ox);
          pixels[k][r] = real ? (n * oh + y) * ow + xx : -1;
          if (real && lowest < 0) lowest = pixels[k][r];
          stored += real;
          if (across_rows && ++xx == width) xx = 0, ++y;
          if (!across_rows) ++xx;
        }
      }
      ForwardInt8Amx(pass, count, firsts, pixels, step, chunk);
      // The stored pixels are consecutive outputs.
      if (y_range != nullptr && stored > 0) scan.Add(pass.y + lowest * g.o, stored * g.o);
    }
    AmxRelease();
    if (y_range != nullptr) {
#pragma omp critical
      y_range->Merge(scan);
    }
  }
}

}  // namespace

PaddedImages<uint8_t> ShiftedPaddedImages(const ConvGeometry& g, const int8_t* x) {
  return PaddedImages<uint8_t>(g, x, uint8_t{128}, [](int8_t code) {
    return static_cast<uint8_t>(static_cast<uint8_t>(code) ^ 0x80);
  });
}

bool S8ForwardInPlace(const ConvGeometry& g) {
  return g.c % 4 == 0 && g.kernel * g.kernel * g.c <= kGemmS8MaxChunk &&
         ActiveIsa() == Isa::kAvx512 && HasAvx512Vnni();
}

void ForwardInt8InPlace(const ConvGeometry& g, const Quantized& qx, const Quantized& qw, float* y,
                        RangeScan* y_range, const float* addend, bool amx) {
  const PaddedImages<uint8_t> x = ShiftedPaddedImages(g, qx.s8.data());
  // The segments: runs of k that lie contiguously in every patch. A kernel row's taps are
  // adjacent in the padded images, so where every tap is live a kernel row is one segment (a tile
  // sets up its rows' pointers a third as often at 3x3), else each live tap is one.
  bool all_live = true;
  for (int64_t t = 0; t < g.kernel * g.kernel; ++t) all_live = all_live && x.live_tap(t);
  const int64_t segment_codes = all_live ? g.kernel * g.c : g.c;
  std::vector<int64_t> first_k, offsets;  // Of each segment in w's rows and in a patch.
  for (int64_t t = 0; t < g.kernel * g.kernel; t += all_live ? g.kernel : 1) {
    if (!x.live_tap(t)) continue;
    first_k.push_back(t * g.c);
    offsets.push_back(x.tap_offsets()[t]);
  }
  const int64_t per_tile = S8ForwardUnitsPerTile(g.o), quads = segment_codes / 4;
  const int64_t units = ((g.o + 15) / 16 + per_tile - 1) / per_tile * per_tile;
  const int64_t segments = static_cast<int64_t>(first_k.size()), k = g.kernel * g.kernel * g.c;
  const int64_t weight_quads = units * segments * quads * 16;
  std::span<int32_t> packed =
      Scratch<int32_t>(ScratchSlot::kGemmPackedB, weight_quads + units * 16);
  std::fill(packed.begin(), packed.end(), 0);
  int32_t* const shift_sums = packed.data() + weight_quads;
  for (int64_t o = 0; o < g.o; ++o) {
    int64_t sum = 0;
    for (int64_t s = 0; s < segments; ++s) {
      const int8_t* w = qw.s8.data() + o * k + first_k[s];
      for (int64_t q = 0; q < quads; ++q) {
        std::memcpy(&packed[((o / 16 * segments + s) * quads + q) * 16 + o % 16], w + 4 * q, 4);
      }
      for (int64_t c = 0; c < segment_codes; ++c) sum += w[c];
    }
    shift_sums[o] = static_cast<int32_t>(128 * sum);  // Fits: see S8ForwardPass.
  }
  const S8ForwardPass pass{.segment_offsets = offsets.data(),
                           .segments = segments,
                           .segment_codes = segment_codes,
                           .weights = packed.data(),
                           .units = units,
                           .shift_sums = shift_sums,
                           .outputs = g.o,
                           .scale = std::ldexp(1.0f, -(qx.exponent + qw.exponent)),
                           .addend = addend,
                           .y = y};
  if (amx) {
    RunAmx(g, x, pass, y_range);
  } else {
    RunAvx512(g, x, pass, y_range);
  }
}

bool S8WeightsInPlace(const ConvGeometry& g) {
  return g.c % 16 == 0 && ActiveIsa() == Isa::kAvx512 && HasAvx512Vnni() && HasAvx512Vbmi();
}

int64_t DeconvRightPadding(const ConvGeometry& g, int64_t in, int64_t out) {
  return (out - 1) * g.stride + g.kernel - g.padding - in;
}

// out = pass(codes a, codes w), unscaled, with exact integer accumulation (each output sums
// at most O*KH*KW or C*KH*KW products of at most 2^14, which fit int32 while that count is at
// most kGemmS8MaxChunk, which the caller checks).
void DirectInt8Run(const ConvGeometry& g, Pass pass, const Quantized& qa, const Quantized& qw,
                   float* out) {
  using dnnl::memory;
  const DirectInt8& d = DirectInt8For(g, pass);
  thread_local dnnl::stream stream(DnnlEngine());
  const memory plain(d.weights_plain, DnnlEngine(), const_cast<int8_t*>(qw.s8.data()));
  memory weights = plain;
  if (d.weights != d.weights_plain) {
    weights = memory(d.weights, DnnlEngine());
    dnnl::reorder(plain, weights).execute(stream, const_cast<memory&>(plain), weights);
  }
  d.primitive.execute(
      stream, {{DNNL_ARG_SRC, memory(d.src, DnnlEngine(), const_cast<int8_t*>(qa.s8.data()))},
               {DNNL_ARG_WEIGHTS, weights},
               {DNNL_ARG_DST, memory(d.dst, DnnlEngine(), out)}});
  stream.wait();
}

// 8-bit backward-weights without the full im2col matrix: each thread unfolds blocks of rows that
// stay in its cache and multiplies them at once. Each block's products are exact in int32 (a
// block sums far fewer than kGemmS8MaxChunk of them) and blocks add in int64, so dW is exact,
// rounded once to FP32, whatever the block size or thread count. The full matrix would be 9x
// the input's size, written and read back through memory.
absl::Status BackwardWeightsInt8(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                                 float* dw) {
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  // Blocks of ~256 KiB of codes, but at least 1024 rows: adding a block's product into the
  // int64 sum costs about as much as 1024 rows of multiply-adds when O x K is large.
  constexpr int64_t kBlockBytes = 256 << 10;
  const int64_t block = std::clamp<int64_t>(kBlockBytes / k, 1024, 16384);
  // Reused across calls: a fresh O x K int64 buffer is megabytes of page faults on wide layers.
  std::span<int64_t> total = Scratch<int64_t>(ScratchSlot::kBlockTotal, g.o * k);
  std::fill(total.begin(), total.end(), 0);
  std::optional<PaddedImages<uint8_t>> padded;
  std::vector<int64_t> units;  // In place: those of live taps.
  if (S8WeightsInPlace(g)) {
    padded.emplace(ShiftedPaddedImages(g, qx.s8.data()));
    units = LiveUnits(*padded, g.kernel * g.kernel, g.c);
  }
  absl::Status status;
  if (padded && SpreadEachBlock((rows + block - 1) / block)) {
    // In place: one block after another, each on every thread.
    std::span<int32_t> product = Scratch<int32_t>(ScratchSlot::kBlockProduct, g.o * k);
    for (int64_t begin = 0; begin < rows; begin += block) {
      BlockProductInPlace(g, qdy, *padded, units, begin, std::min(block, rows - begin),
                          product.data(), /*parallel=*/true);
      for (int64_t i = 0; i < g.o * k; ++i) total[i] += product[i];
    }
  } else {
#pragma omp parallel
    {
      // The im2col rows of a block, where the GEMM cannot unfold them itself.
      std::span<int8_t> cols =
          Scratch<int8_t>(ScratchSlot::kIm2Col, padded || S8ImplicitGemm(g.c) ? 0 : block * k);
      std::span<int32_t> product = Scratch<int32_t>(ScratchSlot::kBlockProduct, g.o * k);
      std::span<int64_t> sum = Scratch<int64_t>(ScratchSlot::kBlockSum, g.o * k);
      std::fill(sum.begin(), sum.end(), 0);
#pragma omp for schedule(static) nowait
      for (int64_t begin = 0; begin < rows; begin += block) {
        const int64_t n = std::min(block, rows - begin);
        absl::Status s;
        if (padded) {
          BlockProductInPlace(g, qdy, *padded, units, begin, n, product.data(), /*parallel=*/false);
        } else {
          s = BlockProduct(g, qdy, qx, begin, n, cols.data(), product.data());
        }
        if (!s.ok()) {
#pragma omp critical
          if (status.ok()) status = s;
          continue;
        }
        for (int64_t i = 0; i < g.o * k; ++i) sum[i] += product[i];
      }
#pragma omp critical
      for (int64_t i = 0; i < g.o * k; ++i) total[i] += sum[i];
    }
  }
  const float scale = std::ldexp(1.0f, -(qdy.exponent + qx.exponent));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < g.o * k; ++i) dw[i] = static_cast<float>(total[i]) * scale;
  return status;
}

}  // namespace muppet::kernels::internal
