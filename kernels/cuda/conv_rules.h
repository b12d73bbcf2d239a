// How a convolution becomes one tensor-core GEMM (conv_s8.h): the im2col matrix's shape, padded
// to what the tensor cores accept, and which input element each of its entries is. Plain C++,
// __host__ __device__ under nvcc, tested on every machine.
//
// Forward: Y (M x O) = X' (M x K) * W (O x K)^T, with M = N OH OW output pixels, K = KH KW C in
// (ky, kx, c) order and W the weights as stored (O x KH x KW x C): both operands K-major, the
// TN arrangement IMMA runs, and Y is channels-last as it comes.
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

// The forward GEMM's true dimensions and the padded ones it runs at: M and O rounded up to a
// multiple of 4, K to a multiple of 16 (so every im2col row starts 16-byte aligned). The padding
// rows and columns are code 0.
struct ConvGemm {
  int64_t m = 0, n = 0, k = 0;
  int64_t m_pad = 0, n_pad = 0, k_pad = 0;
};

constexpr int64_t RoundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

constexpr ConvGemm ConvGemmOf(const ConvGeometry& g) {
  ConvGemm s{.m = g.n * g.out_h() * g.out_w(), .n = g.o, .k = g.kernel * g.kernel * g.c};
  s.m_pad = RoundUp(s.m, 4);
  s.n_pad = RoundUp(s.n, 4);
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

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_CONV_RULES_H_
