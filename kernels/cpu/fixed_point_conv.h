// Fixed-point 2-D convolution on the integer GEMMs: forward, backward-data and
// backward-weights, FP32 in and out, operands quantised inside at one word length (as in
// fixed_point_linear.h; Quantized and FixedPointOptions are in fixed_point.h).
//
// Tensors are channels-last, as in the training engine (kernels/common/conv_geometry.h has the
// layouts). The input is quantised once and then unfolded (im2col) as integer codes, so
// quantisation costs one pass over x, not KH * KW passes; padding is code 0, which is exactly 0.
#ifndef MUPPET_KERNELS_CPU_FIXED_POINT_CONV_H_
#define MUPPET_KERNELS_CPU_FIXED_POINT_CONV_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "kernels/common/conv_geometry.h"
#include "kernels/cpu/fixed_point_linear.h"

namespace muppet::kernels {

// Each op comes in two levels, as in fixed_point_linear.h: on codes (training reuses each
// tensor's codes across passes), and on FP32 tensors quantised inside. They return the
// saturations they caused.

// y = conv(x, w) + bias (bias may be empty). With a `y_range`, also gathers y's range
// (RangeScan), for quantising y next without a scan, where the route makes a pass over y anyway
// (scaling integer sums, adding the bias); elsewhere y_range is left as it was.
absl::StatusOr<int64_t> ConvForward(const ConvGeometry& g, const Quantized& x, const Quantized& w,
                                    std::span<const float> bias, std::span<float> y,
                                    RangeScan* y_range = nullptr);
absl::StatusOr<int64_t> ConvForward(const FixedPointOptions& options, const ConvGeometry& g,
                                    std::span<const float> x, std::span<const float> w,
                                    std::span<const float> bias, std::span<float> y);

// dx = the transposed convolution of dy with w, plus `addend` unless it is empty (another
// path's gradient of the same input, dx's size; INVALID_ARGUMENT otherwise), added in the pass
// that scales oneDNN's integer sums where there is one.
absl::StatusOr<int64_t> ConvBackwardData(const ConvGeometry& g, const Quantized& dy,
                                         const Quantized& w, std::span<float> dx,
                                         std::span<const float> addend = {});
absl::StatusOr<int64_t> ConvBackwardData(const FixedPointOptions& options, const ConvGeometry& g,
                                         std::span<const float> dy, std::span<const float> w,
                                         std::span<float> dx);

// dw = correlation of dy with x; db = per-channel sums of dy (db may be empty). At 9-16 bits,
// on layers of 16k channels or of at least 256 output pixels per output channel, the reduction
// over output pixels runs in chunks of kConvWeightsChunkPixels, each an int16 GEMM whose pairs
// of k are pairs of consecutive pixels (gemm_s16.h), scaled, then added in order: the same bits
// for every thread count and instruction set.
inline constexpr int64_t kConvWeightsChunkPixels = 1024;
absl::StatusOr<int64_t> ConvBackwardWeights(const ConvGeometry& g, const Quantized& dy,
                                            const Quantized& x, std::span<float> dw,
                                            std::span<float> db);
absl::StatusOr<int64_t> ConvBackwardWeights(const FixedPointOptions& options, const ConvGeometry& g,
                                            std::span<const float> dy, std::span<const float> x,
                                            std::span<float> dw, std::span<float> db);

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_FIXED_POINT_CONV_H_
