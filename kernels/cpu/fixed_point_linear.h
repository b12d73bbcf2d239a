// Fixed-point fully connected layer operations on the integer GEMMs, FP32 out. Two levels:
// - on codes (Quantized operands of one word length), for training, where a layer quantises
//   each tensor once and reuses its codes: Q(x) in forward and backward-weights, Q(w) in
//   forward and backward-data, Q(dy) in both backward passes;
// - on FP32 tensors, quantising the operands inside on their own streams of one step, as
//   MuPPET prescribes (input, weights and incoming gradient; see
//   docs/ALGORITHM.md, section 2).
// Word lengths up to 8 run on the int8 GEMM, longer ones on the int16 GEMM. Every op returns the
// saturations it caused: saturated GEMM sums, plus clamped codes for the FP32 level.
#ifndef MUPPET_KERNELS_CPU_FIXED_POINT_LINEAR_H_
#define MUPPET_KERNELS_CPU_FIXED_POINT_LINEAR_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "kernels/cpu/fixed_point.h"

namespace muppet::kernels {

// y (n x o) = x (n x f) * w^T (o x f) + bias (o; may be empty).
absl::StatusOr<int64_t> LinearForward(const Quantized& x, const Quantized& w,
                                      std::span<const float> bias, int64_t n, int64_t f, int64_t o,
                                      std::span<float> y);
absl::StatusOr<int64_t> LinearForward(const FixedPointOptions& options, std::span<const float> x,
                                      std::span<const float> w, std::span<const float> bias,
                                      int64_t n, int64_t f, int64_t o, std::span<float> y);

// dx (n x f) = dy (n x o) * w (o x f).
absl::StatusOr<int64_t> LinearBackwardData(const Quantized& dy, const Quantized& w, int64_t n,
                                           int64_t f, int64_t o, std::span<float> dx);
absl::StatusOr<int64_t> LinearBackwardData(const FixedPointOptions& options,
                                           std::span<const float> dy, std::span<const float> w,
                                           int64_t n, int64_t f, int64_t o, std::span<float> dx);

// dw (o x f) = dy^T (o x n) * x (n x f); db (o) = column sums of dy (db may be empty when there
// is no bias).
absl::StatusOr<int64_t> LinearBackwardWeights(const Quantized& dy, const Quantized& x, int64_t n,
                                              int64_t f, int64_t o, std::span<float> dw,
                                              std::span<float> db);
absl::StatusOr<int64_t> LinearBackwardWeights(const FixedPointOptions& options,
                                              std::span<const float> dy, std::span<const float> x,
                                              int64_t n, int64_t f, int64_t o, std::span<float> dw,
                                              std::span<float> db);

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_FIXED_POINT_LINEAR_H_
