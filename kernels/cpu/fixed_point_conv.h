// Fixed-point 2-D convolution on the integer GEMMs: forward, backward-data and
// backward-weights, FP32 in and out, operands quantised inside at one word length (as in
// fixed_point_linear.h, whose Quantized and FixedPointOptions these share).
//
// Tensors are channels-last, as in the training engine: x is N x H x W x C, y is
// N x OH x OW x O, and weights are O x KH x KW x C (logical O, C, KH, KW). The input is quantised
// once and then unfolded (im2col) as integer codes, so quantisation costs one pass over x, not
// KH * KW passes; padding is code 0, which is exactly 0.
#ifndef MUPPET_KERNELS_CPU_FIXED_POINT_CONV_H_
#define MUPPET_KERNELS_CPU_FIXED_POINT_CONV_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "kernels/cpu/fixed_point_linear.h"

namespace muppet::kernels {

struct ConvGeometry {
  int64_t n = 1, h = 1, w = 1, c = 1;  // Input.
  int64_t o = 1;                       // Output channels.
  int64_t kernel = 3;                  // Square kernel.
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t out_h() const { return (h + 2 * padding - kernel) / stride + 1; }
  int64_t out_w() const { return (w + 2 * padding - kernel) / stride + 1; }
};

// y = conv(Q(x), Q(w)) + bias (bias may be empty). Returns the saturations it caused.
absl::StatusOr<int64_t> ConvForward(const FixedPointOptions& options, const ConvGeometry& g,
                                    std::span<const float> x, std::span<const float> w,
                                    std::span<const float> bias, std::span<float> y);

// dx = the transposed convolution of Q(dy) with Q(w).
absl::StatusOr<int64_t> ConvBackwardData(const FixedPointOptions& options, const ConvGeometry& g,
                                         std::span<const float> dy, std::span<const float> w,
                                         std::span<float> dx);

// dw = correlation of Q(dy) with Q(x); db = per-channel sums of Q(dy) (db may be empty).
absl::StatusOr<int64_t> ConvBackwardWeights(const FixedPointOptions& options, const ConvGeometry& g,
                                            std::span<const float> dy, std::span<const float> x,
                                            std::span<float> dw, std::span<float> db);

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_FIXED_POINT_CONV_H_
