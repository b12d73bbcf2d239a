#include "kernels/cpu/fixed_point_conv.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/fixed_point_internal.h"
#include "kernels/cpu/gemm_s16.h"
#include "kernels/cpu/gemm_s8.h"
#include "kernels/cpu/scratch.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace muppet::kernels {
namespace {

using internal::CheckBiasSize;
using internal::CheckCodes;
using internal::CodesView;
using internal::Multiply;
using internal::OperandBuffer;
using internal::View;

dnnl::engine& DnnlEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

absl::Status CheckGeometry(const ConvGeometry& g) {
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.c < 1 || g.o < 1 || g.kernel < 1 || g.stride < 1 ||
      g.padding < 0 || g.out_h() < 1 || g.out_w() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid convolution: input ", g.n, "x", g.h, "x", g.w, "x", g.c, ", ", g.o,
        " outputs, kernel ", g.kernel, ", stride ", g.stride, ", padding ", g.padding));
  }
  return absl::OkStatus();
}

// Writes the patch of output pixel (oy, ox) of one channels-last image into one im2col row,
// columns in (ky, kx, c) order to match the weights' storage. Padding is code 0, exactly 0.
template <typename Code>
void CopyPatch(const ConvGeometry& g, const Code* image, int64_t oy, int64_t ox, Code* out) {
  const int64_t iy0 = oy * g.stride - g.padding, ix0 = ox * g.stride - g.padding;
  if (iy0 >= 0 && ix0 >= 0 && iy0 + g.kernel <= g.h && ix0 + g.kernel <= g.w) {
    // Inside the image, each kernel row reads KW consecutive pixels: one copy per row.
    for (int64_t ky = 0; ky < g.kernel; ++ky) {
      std::memcpy(out + ky * g.kernel * g.c, image + ((iy0 + ky) * g.w + ix0) * g.c,
                  g.kernel * g.c * sizeof(Code));
    }
    return;
  }
  std::fill(out, out + g.kernel * g.kernel * g.c, Code{0});
  for (int64_t ky = 0; ky < g.kernel; ++ky) {
    const int64_t iy = iy0 + ky;
    if (iy < 0 || iy >= g.h) continue;
    for (int64_t kx = 0; kx < g.kernel; ++kx) {
      const int64_t ix = ix0 + kx;
      if (ix < 0 || ix >= g.w) continue;
      std::memcpy(out + (ky * g.kernel + kx) * g.c, image + (iy * g.w + ix) * g.c,
                  g.c * sizeof(Code));
    }
  }
}

// Rows [begin, end) of the im2col matrix (N*OH*OW) x (KH*KW*C) of codes x, into out.
template <typename Code>
void Im2ColRows(const ConvGeometry& g, const Code* x, int64_t begin, int64_t end, Code* out) {
  const int64_t oh = g.out_h(), ow = g.out_w(), k = g.kernel * g.kernel * g.c;
  int64_t n = begin / (oh * ow), oy = begin / ow % oh, ox = begin % ow;
  for (int64_t row = begin; row < end; ++row, out += k) {
    CopyPatch(g, x + n * g.h * g.w * g.c, oy, ox, out);
    if (++ox == ow) {
      ox = 0;
      if (++oy == oh) oy = 0, ++n;
    }
  }
}

// The whole im2col matrix, written into this thread's scratch buffer (see scratch.h): it is the
// largest temporary of a convolution.
template <typename Code>
const Code* Im2Col(const ConvGeometry& g, const std::vector<Code>& x) {
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  std::span<Code> cols = Scratch<Code>(ScratchSlot::kIm2Col, rows * k);
  constexpr int64_t kRowsPerTask = 256;
#pragma omp parallel for schedule(static)
  for (int64_t begin = 0; begin < rows; begin += kRowsPerTask) {
    Im2ColRows(g, x.data(), begin, std::min(rows, begin + kRowsPerTask), cols.data() + begin * k);
  }
  return cols.data();
}

// The input unfolded as codes, sharing x's exponent.
CodesView Unfold(const ConvGeometry& g, const Quantized& qx) {
  CodesView view = View(qx);
  if (qx.word_length <= 8) {
    view.s8 = Im2Col(g, qx.s8);
  } else {
    view.s16 = Im2Col(g, qx.s16);
  }
  return view;
}

// oneDNN's direct int8 primitives, one per pass and geometry, created once: nhwc s8 codes in,
// the exact integer sums out as FP32. The scale 2^-(sa + sb) is applied afterwards
// (ScaleAndAddBias): a power of two, so the result is bit-identical to scaling inside, and one
// primitive serves every exponent. (oneDNN 2.6 takes no run-time output scale for int8
// convolutions; a primitive per exponent meant a JIT compilation whenever a layer's exponents
// moved.) Weights are reordered from their plain codes into the layout the primitive prefers
// on every call (they change every step; they are small).
enum class Pass : int64_t { kForward, kBackwardData };

struct DirectInt8 {
  dnnl::primitive primitive;
  dnnl::memory::desc src, weights_plain, weights, dst;
};

// Right padding of the transposed convolution that maps dy (out_h x out_w) back onto x (h x w):
// smaller than the left padding where the forward convolution's last stride window dropped
// input rows.
int64_t DeconvRightPadding(const ConvGeometry& g, int64_t in, int64_t out) {
  return (out - 1) * g.stride + g.kernel - g.padding - in;
}

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

// One s8 x s8 -> s32 matmul per (O, block rows, K), created once: C (O x K) = A^T x B with A a
// block of dY codes (rows x O) and B the same rows of the im2col matrix (rows x K).
const dnnl::matmul& BlockMatmul(int64_t o, int64_t rows, int64_t k) {
  using dnnl::memory;
  static std::mutex mu;
  static auto* cache = new std::map<std::array<int64_t, 3>, dnnl::matmul>;
  std::lock_guard<std::mutex> lock(mu);
  const std::array<int64_t, 3> key = {o, rows, k};
  if (auto it = cache->find(key); it != cache->end()) return it->second;
  dnnl::matmul::primitive_desc pd(
      dnnl::matmul::desc(memory::desc({o, rows}, memory::data_type::s8, memory::dims{1, o}),
                         memory::desc({rows, k}, memory::data_type::s8, memory::dims{k, 1}),
                         memory::desc({o, k}, memory::data_type::s32, memory::dims{k, 1})),
      DnnlEngine());
  return cache->emplace(key, dnnl::matmul(pd)).first->second;
}

// 8-bit backward-weights without the full im2col matrix: each thread unfolds blocks of rows that
// stay in its cache and multiplies them at once. Each block's products are exact in int32 (a
// block sums far fewer than kGemmS8MaxChunk of them) and blocks add in int64, so dW is exact,
// rounded once to FP32, whatever the block size or thread count. The full matrix would be 9x
// the input's size, written and read back through memory.
void BackwardWeightsInt8(const ConvGeometry& g, const Quantized& qdy, const Quantized& qx,
                         float* dw) {
  using dnnl::memory;
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  // Blocks of ~256 KiB of codes, but at least 1024 rows: adding a block's product into the
  // int64 sum costs about as much as 1024 rows of multiply-adds when O x K is large.
  constexpr int64_t kBlockBytes = 256 << 10;
  const int64_t block = std::clamp<int64_t>(kBlockBytes / k, 1024, 16384);
  std::vector<int64_t> total(g.o * k, 0);
#pragma omp parallel
  {
    thread_local dnnl::stream stream(DnnlEngine());
    std::span<int8_t> cols = Scratch<int8_t>(ScratchSlot::kIm2Col, block * k);
    std::span<int32_t> product = Scratch<int32_t>(ScratchSlot::kBlockProduct, g.o * k);
    std::span<int64_t> sum = Scratch<int64_t>(ScratchSlot::kBlockSum, g.o * k);
    std::fill(sum.begin(), sum.end(), 0);
#pragma omp for schedule(static) nowait
    for (int64_t begin = 0; begin < rows; begin += block) {
      const int64_t n = std::min(block, rows - begin);
      Im2ColRows(g, qx.s8.data(), begin, begin + n, cols.data());
      const memory::desc a({g.o, n}, memory::data_type::s8, memory::dims{1, g.o});
      const memory::desc b({n, k}, memory::data_type::s8, memory::dims{k, 1});
      const memory::desc c({g.o, k}, memory::data_type::s32, memory::dims{k, 1});
      BlockMatmul(g.o, n, k).execute(
          stream, {{DNNL_ARG_SRC,
                    memory(a, DnnlEngine(), const_cast<int8_t*>(qdy.s8.data() + begin * g.o))},
                   {DNNL_ARG_WEIGHTS, memory(b, DnnlEngine(), cols.data())},
                   {DNNL_ARG_DST, memory(c, DnnlEngine(), product.data())}});
      stream.wait();
      for (int64_t i = 0; i < g.o * k; ++i) sum[i] += product[i];
    }
#pragma omp critical
    for (int64_t i = 0; i < g.o * k; ++i) total[i] += sum[i];
  }
  const float scale = std::ldexp(1.0f, -(qdy.exponent + qx.exponent));
  for (int64_t i = 0; i < g.o * k; ++i) dw[i] = static_cast<float>(total[i]) * scale;
}

// Whether a 9-16-bit pass over `rows` output pixels of `channels` channels should run in blocks
// of rows (below) rather than as one GEMM over the whole im2col matrix. Blocks win where that
// matrix is large next to the weights, which every block packs again: resnet20's 16- and
// 32-channel layers (0.1-0.3x -> 0.25-0.55x FP32); one GEMM wins on wide, small layers like
// alexnet's (its 12-bit epoch took 0.52x FP32 with blocks, 0.90x without; PERFORMANCE.md).
bool PreferBlocks(int64_t rows, int64_t channels) { return rows >= 256 * channels; }

// 9-16-bit forward convolution in blocks of output rows: each thread unfolds a block of im2col
// rows that fits its cache and multiplies it by the weights at once, so the full im2col matrix
// (KH x KW times the input) and its packed copy never go through memory. Row results do not
// depend on the blocking (every output element sums its whole reduction in one fixed block
// order), so the result is the same for any thread count.
int64_t ForwardInt16(const ConvGeometry& g, const Quantized& qx, const Quantized& qw, float* y) {
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  // ~128 KiB of codes per block, but at least 16 rows per output channel: every block packs
  // the O x K weights again, which must stay small next to the block's multiply-adds. Then as
  // many equal blocks as make the threads' shares equal.
  constexpr int64_t kBlockBytes = 128 << 10;
  const int64_t max_block =
      std::clamp<int64_t>(std::max(kBlockBytes / (2 * k), 16 * g.o), 96, 8192);
  const int64_t threads = omp_get_max_threads();
  const int64_t blocks = ((rows + max_block - 1) / max_block + threads - 1) / threads * threads;
  const int64_t block = ((rows + blocks - 1) / blocks + 11) / 12 * 12;  // Whole 12-row tiles.
  const float scale = std::ldexp(1.0f, -(qx.exponent + qw.exponent));
  const int64_t block_pairs = GemmS16BlockPairs(qx.word_length);
  int64_t saturated = 0;
#pragma omp parallel for schedule(static) reduction(+ : saturated)
  for (int64_t begin = 0; begin < rows; begin += block) {
    const int64_t n = std::min(block, rows - begin);
    std::span<int16_t> cols = Scratch<int16_t>(ScratchSlot::kIm2Col, block * k);
    Im2ColRows(g, qx.s16.data(), begin, begin + n, cols.data());
    // Inside this parallel loop the GEMM's own parallel regions run on one thread.
    saturated += GemmS16({.m = n, .n = g.o, .k = k, .b_transposed = true}, cols.data(),
                         qw.s16.data(), scale, y + begin * g.o, block_pairs)
                     .value_or(0);  // Shapes are valid by construction.
  }
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

// Stride 1: backward-data is the forward convolution of dy with the weights rotated by 180
// degrees and input and output channels swapped, padded by KH - 1 - padding. Returns the codes
// of those weights, stored C x KH x KW x O.
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

// Folds column gradients (rows x K) back onto dx, adding every patch element to the input
// pixel it came from.
void Col2Im(const ConvGeometry& g, const float* dcols, std::span<float> dx) {
  const int64_t oh = g.out_h(), ow = g.out_w(), k = g.kernel * g.kernel * g.c;
  std::fill(dx.begin(), dx.end(), 0.0f);
  // Parallel over images: no two threads add into the same element, and the order of additions
  // into each element is fixed, so the result does not depend on the thread count.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        const float* in = dcols + ((n * oh + oy) * ow + ox) * k;
        for (int64_t ky = 0; ky < g.kernel; ++ky) {
          const int64_t iy = oy * g.stride - g.padding + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (int64_t kx = 0; kx < g.kernel; ++kx) {
            const int64_t ix = ox * g.stride - g.padding + kx;
            if (ix < 0 || ix >= g.w) continue;
            float* out = dx.data() + ((n * g.h + iy) * g.w + ix) * g.c;
            const float* src = in + (ky * g.kernel + kx) * g.c;
            for (int64_t c = 0; c < g.c; ++c) out[c] += src[c];
          }
        }
      }
    }
  }
}

}  // namespace

absl::StatusOr<int64_t> ConvForward(const ConvGeometry& g, const Quantized& qx, const Quantized& qw,
                                    std::span<const float> bias, std::span<float> y) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  if (absl::Status s = CheckCodes(qx, g.n * g.h * g.w * g.c, "x", qw, g.o * k, "w", y, rows * g.o);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckBiasSize(bias, g.o, "bias"); !s.ok()) return s;
  int64_t saturated = 0;
  if (qx.word_length <= 8 && k <= kGemmS8MaxChunk) {
    // oneDNN's direct int8 convolution: 2.6-4x faster than im2col + GEMM (PERFORMANCE.md).
    DirectInt8Run(g, Pass::kForward, qx, qw, y.data());
    internal::ScaleAndAddBias(std::ldexp(1.0f, -(qx.exponent + qw.exponent)), bias, rows, g.o, y);
    return saturated;
  }
  if (qx.word_length > 8 && PreferBlocks(rows, g.o)) {
    saturated = ForwardInt16(g, qx, qw, y.data());
  } else {
    // y (rows x O) = cols (rows x K) * W^T, W stored O x K.
    absl::StatusOr<int64_t> gemm = Multiply({.m = rows, .n = g.o, .k = k, .b_transposed = true},
                                            Unfold(g, qx), View(qw), y.data());
    if (!gemm.ok()) return gemm.status();
    saturated = *gemm;
  }
  internal::AddBias(bias, rows, g.o, y);
  return saturated;
}

absl::StatusOr<int64_t> ConvBackwardData(const ConvGeometry& g, const Quantized& qdy,
                                         const Quantized& qw, std::span<float> dx) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  const int64_t oh = g.out_h(), ow = g.out_w(), rows = g.n * oh * ow;
  const int64_t k = g.kernel * g.kernel * g.c;
  if (absl::Status s =
          CheckCodes(qdy, rows * g.o, "dy", qw, g.o * k, "w", dx, g.n * g.h * g.w * g.c);
      !s.ok()) {
    return s;
  }
  const bool directly = qdy.word_length <= 8 && g.o * g.kernel * g.kernel <= kGemmS8MaxChunk &&
                        DeconvRightPadding(g, g.h, oh) >= 0 && DeconvRightPadding(g, g.w, ow) >= 0;
  if (directly) {
    // oneDNN's direct int8 transposed convolution (PERFORMANCE.md).
    DirectInt8Run(g, Pass::kBackwardData, qdy, qw, dx.data());
    internal::ScaleAndAddBias(std::ldexp(1.0f, -(qdy.exponent + qw.exponent)), {}, g.n * g.h * g.w,
                              g.c, dx);
    return 0;
  }
  if (qdy.word_length > 8 && g.stride == 1 && g.padding <= g.kernel - 1 &&
      PreferBlocks(g.n * g.h * g.w, g.c)) {
    // The transposed convolution as a forward one: no column matrix of K floats per pixel.
    return ForwardInt16(TransposedGeometry(g), qdy, FlippedWeights(g, qw), dx.data());
  }
  // dcols (rows x K) = dY (rows x O) * W (O x K), then folded back (col2im) into dx.
  std::span<float> dcols = Scratch<float>(ScratchSlot::kColumnGradients, rows * k);
  absl::StatusOr<int64_t> saturated =
      Multiply({.m = rows, .n = k, .k = g.o}, View(qdy), View(qw), dcols.data());
  if (!saturated.ok()) return saturated.status();
  Col2Im(g, dcols.data(), dx);
  return *saturated;
}

absl::StatusOr<int64_t> ConvBackwardWeights(const ConvGeometry& g, const Quantized& qdy,
                                            const Quantized& qx, std::span<float> dw,
                                            std::span<float> db) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  const int64_t rows = g.n * g.out_h() * g.out_w(), k = g.kernel * g.kernel * g.c;
  if (absl::Status s =
          CheckCodes(qdy, rows * g.o, "dy", qx, g.n * g.h * g.w * g.c, "x", dw, g.o * k);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckBiasSize(db, g.o, "db"); !s.ok()) return s;
  int64_t saturated = 0;
  if (qdy.word_length <= 8) {
    BackwardWeightsInt8(g, qdy, qx, dw.data());
  } else if (PreferBlocks(rows, g.o)) {
    saturated = BackwardWeightsInt16(g, qdy, qx, dw.data());
  } else {
    // dW (O x K) = dY^T (O x rows) * cols (rows x K); dY is stored rows x O.
    absl::StatusOr<int64_t> gemm = Multiply({.m = g.o, .n = k, .k = rows, .a_transposed = true},
                                            View(qdy), Unfold(g, qx), dw.data());
    if (!gemm.ok()) return gemm.status();
    saturated = *gemm;
  }
  if (!db.empty()) internal::ColumnSums(qdy, rows, g.o, db);
  return saturated;
}

// The FP32 level: quantise each operand on its own stream, then the op on codes.

absl::StatusOr<int64_t> ConvForward(const FixedPointOptions& o, const ConvGeometry& g,
                                    std::span<const float> x, std::span<const float> w,
                                    std::span<const float> bias, std::span<float> y) {
  Quantized &qx = OperandBuffer(Operand::kInput), &qw = OperandBuffer(Operand::kWeights);
  if (absl::Status s = QuantizeOperand(o, x, Operand::kInput, qx); !s.ok()) return s;
  if (absl::Status s = QuantizeOperand(o, w, Operand::kWeights, qw); !s.ok()) return s;
  absl::StatusOr<int64_t> saturated = ConvForward(g, qx, qw, bias, y);
  if (!saturated.ok()) return saturated;
  return qx.saturated + qw.saturated + *saturated;
}

absl::StatusOr<int64_t> ConvBackwardData(const FixedPointOptions& o, const ConvGeometry& g,
                                         std::span<const float> dy, std::span<const float> w,
                                         std::span<float> dx) {
  Quantized &qdy = OperandBuffer(Operand::kGradient), &qw = OperandBuffer(Operand::kWeights);
  if (absl::Status s = QuantizeOperand(o, dy, Operand::kGradient, qdy); !s.ok()) return s;
  if (absl::Status s = QuantizeOperand(o, w, Operand::kWeights, qw); !s.ok()) return s;
  absl::StatusOr<int64_t> saturated = ConvBackwardData(g, qdy, qw, dx);
  if (!saturated.ok()) return saturated;
  return qdy.saturated + qw.saturated + *saturated;
}

absl::StatusOr<int64_t> ConvBackwardWeights(const FixedPointOptions& o, const ConvGeometry& g,
                                            std::span<const float> dy, std::span<const float> x,
                                            std::span<float> dw, std::span<float> db) {
  Quantized &qdy = OperandBuffer(Operand::kGradient), &qx = OperandBuffer(Operand::kInput);
  if (absl::Status s = QuantizeOperand(o, dy, Operand::kGradient, qdy); !s.ok()) return s;
  if (absl::Status s = QuantizeOperand(o, x, Operand::kInput, qx); !s.ok()) return s;
  absl::StatusOr<int64_t> saturated = ConvBackwardWeights(g, qdy, qx, dw, db);
  if (!saturated.ok()) return saturated;
  return qdy.saturated + qx.saturated + *saturated;
}

}  // namespace muppet::kernels
