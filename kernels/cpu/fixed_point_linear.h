// Fixed-point fully connected layer operations on the integer GEMMs: FP32 in, FP32 out, with the
// operands quantised inside at one word length, as MuPPET prescribes (input, weights and
// incoming gradient; see ../shared/reference/muppet-algorithm.md, section 2). Word lengths up to
// 8 run on the int8 GEMM, longer ones on the int16 GEMM.
#ifndef MUPPET_KERNELS_CPU_FIXED_POINT_LINEAR_H_
#define MUPPET_KERNELS_CPU_FIXED_POINT_LINEAR_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/quantize.h"

namespace muppet::kernels {

// A tensor in dynamic fixed point: codes (int8 for WL <= 8, int16 above) and the exponent s,
// so that x ~= code * 2^-s.
struct Quantized {
  int word_length = 0;
  int exponent = 0;
  std::vector<int8_t> s8;
  std::vector<int16_t> s16;
  int64_t saturated = 0;  // Codes clamped to the signed range.
};

// Quantises `x` with its own MuPPET exponent. INVALID_ARGUMENT for NaN or infinity, an empty
// tensor, or a word length outside [2, 16].
absl::StatusOr<Quantized> QuantizeTensor(std::span<const float> x, int word_length,
                                         Rounding rounding, uint64_t seed, uint64_t stream);

// Precision and randomness of one step. Each operand draws from its own stream derived from
// `step`, so every quantisation in a training run gets independent rounding bits.
struct FixedPointOptions {
  int word_length = 8;
  Rounding rounding = Rounding::kStochastic;
  uint64_t seed = 0;
  uint64_t step = 0;
};

// Every op returns the saturations it caused: clamped codes plus saturated GEMM sums.

// y (n x o) = Q(x) (n x f) * Q(w)^T (o x f) + bias (o; may be empty).
absl::StatusOr<int64_t> LinearForward(const FixedPointOptions& options, std::span<const float> x,
                                      std::span<const float> w, std::span<const float> bias,
                                      int64_t n, int64_t f, int64_t o, std::span<float> y);

// dx (n x f) = Q(dy) (n x o) * Q(w) (o x f).
absl::StatusOr<int64_t> LinearBackwardData(const FixedPointOptions& options,
                                           std::span<const float> dy, std::span<const float> w,
                                           int64_t n, int64_t f, int64_t o, std::span<float> dx);

// dw (o x f) = Q(dy)^T (o x n) * Q(x) (n x f); db (o) = column sums of Q(dy) (db may be empty
// when there is no bias).
absl::StatusOr<int64_t> LinearBackwardWeights(const FixedPointOptions& options,
                                              std::span<const float> dy, std::span<const float> x,
                                              int64_t n, int64_t f, int64_t o, std::span<float> dw,
                                              std::span<float> db);

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_FIXED_POINT_LINEAR_H_
