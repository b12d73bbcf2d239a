// How a convolution's three passes become tensor-core GEMMs (tensor_core_conv.h): the im2col
// matrix's shape, padded to what the tensor cores accept, which input element each of its entries
// is, and which entries of the column gradients fold back onto each input element. Plain C++,
// __host__ __device__ under nvcc, tested on every machine.
//
// With M = N OH OW output pixels, K = KH KW C in (ky, kx, c) order, X' the im2col matrix
// (M x K) and W the weights as stored (O x KH x KW x C, so O x K), every GEMM in the TN
// arrangement IMMA runs (both operands K-major):
// - forward: Y (M x O) = X' W^T, channels-last as it comes;
// - backward-data: dX' (M x K) = dY W, with W transposed (K x O), then folded back (col2im);
// - backward-weights: dW (O x K) = dY^T X', with dY and X' transposed (O x M, K x M).
#ifndef MUPPET_KERNELS_CUDA_CONV_RULES_H_
#define MUPPET_KERNELS_CUDA_CONV_RULES_H_

#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/common/conv_geometry.h"
#include "kernels/common/host_device.h"

namespace muppet::cuda {

using kernels::ConvGeometry;

// The GEMMs' true dimensions and the padded ones they run at: each rounded up to a multiple of
// 16, since each is the reduction of some pass and a chunk of a reduction must start 16-byte
// aligned. The padding rows and columns are code 0.
struct ConvGemm {
  int64_t m = 0, o = 0, k = 0;
  int64_t m_pad = 0, o_pad = 0, k_pad = 0;
};

constexpr int64_t RoundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

constexpr ConvGemm ConvGemmOf(const ConvGeometry& g) {
  ConvGemm s{.m = g.n * g.out_h() * g.out_w(), .o = g.o, .k = g.kernel * g.kernel * g.c};
  s.m_pad = RoundUp(s.m, 16);
  s.o_pad = RoundUp(s.o, 16);
  s.k_pad = RoundUp(s.k, 16);
  return s;
}

// OK, or INVALID_ARGUMENT naming the first field out of range: every size at least 1, the
// padding at least 0 and below the kernel, the kernel no larger than the padded input.
inline absl::Status CheckConvGeometry(const ConvGeometry& g) {
  for (const auto& [name, value] : {std::pair{"n", g.n},
                                    {"h", g.h},
                                    {"w", g.w},
                                    {"c", g.c},
                                    {"o", g.o},
                                    {"kernel", g.kernel},
                                    {"stride", g.stride}}) {
    if (value < 1)
      return absl::InvalidArgumentError(absl::StrCat(name, ": must be >= 1, got ", value));
  }
  if (g.padding < 0 || g.padding >= g.kernel) {
    return absl::InvalidArgumentError(
        absl::StrCat("padding: must be in [0, kernel ", g.kernel, "), got ", g.padding));
  }
  if (g.kernel > g.h + 2 * g.padding || g.kernel > g.w + 2 * g.padding) {
    return absl::InvalidArgumentError(
        absl::StrCat("kernel: ", g.kernel, " exceeds the padded input ", g.h + 2 * g.padding, " x ",
                     g.w + 2 * g.padding));
  }
  return absl::OkStatus();
}

// The index in x (channels-last) of the im2col matrix's entry (row, col), or -1 where it is
// padding: outside the image, or a row or column past the true M or K.
MUPPET_HOST_DEVICE constexpr int64_t Im2ColSource(const ConvGeometry& g, int64_t row, int64_t col) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  if (row >= g.n * oh * ow || col >= g.kernel * g.kernel * g.c) return -1;
  const int64_t image = row / (oh * ow), oy = row / ow % oh, ox = row % ow;
  const int64_t tap = col / g.c, channel = col % g.c;
  const int64_t iy = oy * g.stride - g.padding + tap / g.kernel;
  const int64_t ix = ox * g.stride - g.padding + tap % g.kernel;
  if (iy < 0 || ix < 0 || iy >= g.h || ix >= g.w) return -1;
  return ((image * g.h + iy) * g.w + ix) * g.c + channel;
}

// The index in the padded column gradients (M x k_pad) that tap `tap` (ky KW + kx) of input
// element `element` (channels-last index into x) receives from, or -1 where that tap of the
// element reaches no output pixel (the stride skips it, or it falls past the output's edge).
MUPPET_HOST_DEVICE constexpr int64_t Col2ImSource(const ConvGeometry& g, int64_t k_pad,
                                                  int64_t element, int64_t tap) {
  const int64_t channel = element % g.c, pixel = element / g.c;
  const int64_t ix = pixel % g.w, iy = pixel / g.w % g.h, image = pixel / (g.w * g.h);
  const int64_t ty = iy + g.padding - tap / g.kernel, tx = ix + g.padding - tap % g.kernel;
  if (ty < 0 || tx < 0 || ty % g.stride != 0 || tx % g.stride != 0) return -1;
  const int64_t oy = ty / g.stride, ox = tx / g.stride;
  if (oy >= g.out_h() || ox >= g.out_w()) return -1;
  return ((image * g.out_h() + oy) * g.out_w() + ox) * k_pad + tap * g.c + channel;
}

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_CONV_RULES_H_
