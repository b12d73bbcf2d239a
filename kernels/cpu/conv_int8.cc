#include "kernels/cpu/conv_int8.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
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
  // In place, x's codes are read as u8: x + 128, padding included (code 0 as 128).
  std::optional<PaddedImages<uint8_t>> padded;
  std::vector<int64_t> units;  // In place: those of live taps.
  if (S8WeightsInPlace(g)) {
    padded.emplace(g, qx.s8.data(), uint8_t{128}, [](int8_t code) {
      return static_cast<uint8_t>(static_cast<uint8_t>(code) ^ 0x80);
    });
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
