// Tensors in MuPPET's dynamic fixed point (docs/ALGORITHM.md, section 1):
// integer codes sharing one power-of-two exponent, the options of one training step, and the
// in-place rounding of an FP32 tensor onto its fixed-point grid.
#ifndef MUPPET_KERNELS_CPU_FIXED_POINT_H_
#define MUPPET_KERNELS_CPU_FIXED_POINT_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/batch_norm.h"
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

  // Number of codes.
  int64_t size() const { return static_cast<int64_t>(word_length <= 8 ? s8.size() : s16.size()); }
};

// Quantises `x` with its own MuPPET exponent. INVALID_ARGUMENT for NaN or infinity, an empty
// tensor, or a word length outside [2, 16].
absl::StatusOr<Quantized> QuantizeTensor(std::span<const float> x, int word_length,
                                         Rounding rounding, uint64_t seed, uint64_t stream);

// QuantizeTensor into `out`, reusing its buffers: no allocation once they are large enough
// (fresh pages cost ~10 us each here; see scratch.h). On error `out` is unspecified.
absl::Status QuantizeTensorInto(std::span<const float> x, int word_length, Rounding rounding,
                                uint64_t seed, uint64_t stream, Quantized& out);

// QuantizeTensorInto for an x whose range its producer gathered as it wrote it
// (RangeScan::range()): the same result without a scan of x. `range` must be MinMax(x)'s value;
// nullopt scans x as QuantizeTensorInto does, with its errors.
absl::Status QuantizeTensorInto(std::span<const float> x, std::optional<Range> range,
                                int word_length, Rounding rounding, uint64_t seed, uint64_t stream,
                                Quantized& out);

// x[i] = codes[i] * 2^-exponent: codes back on their grid as floats. Exact for int8 and int16
// codes; int32 codes (sums of codes) above 2^24 in magnitude round once. `x` must have as many
// elements as `codes`.
void Dequantize(std::span<const int8_t> codes, int exponent, std::span<float> x);
void Dequantize(std::span<const int16_t> codes, int exponent, std::span<float> x);
void Dequantize(std::span<const int32_t> codes, int exponent, std::span<float> x);
// q's codes on their grid: x[i] = code[i] * 2^-q.exponent.
void Dequantize(const Quantized& q, std::span<float> x);

// 2^-exponent where it is a normal float, so that float(code) * factor is exactly the code's value
// as Dequantize computes it; 0 for exponents beyond that (Dequantize then goes through double).
// Lets a consumer read codes element by element instead of dequantising them first.
float ExactDequantizeFactor(int exponent);

// Replaces x by Q(x) * 2^-s, its value on the fixed-point grid (x's own exponent). Returns the
// codes saturated; errors as QuantizeTensor.
absl::StatusOr<int64_t> RoundToFixedPoint(std::span<float> x, int word_length, Rounding rounding,
                                          uint64_t seed, uint64_t stream);
// The same for an x whose range is known (as for QuantizeTensorInto).
absl::StatusOr<int64_t> RoundToFixedPoint(std::span<float> x, std::optional<Range> range,
                                          int word_length, Rounding rounding, uint64_t seed,
                                          uint64_t stream);

// Precision and randomness of one step. Each operand draws from its own stream derived from
// `step`, so every quantisation in a training run gets independent rounding bits.
struct FixedPointOptions {
  int word_length = 8;
  Rounding rounding = Rounding::kStochastic;
  uint64_t seed = 0;
  uint64_t step = 0;
};

// The operands of a layer operation, each quantised on its own stream of a step.
enum class Operand : uint64_t { kInput = 0, kWeights = 1, kGradient = 2 };

// The stream an operand of a step is quantised on: step * 3 + operand.
uint64_t OperandStream(const FixedPointOptions& options, Operand operand);

// Quantises one operand of a step at the options' word length, on the operand's own stream
// (OperandStream), into `out`.
absl::Status QuantizeOperand(const FixedPointOptions& options, std::span<const float> x,
                             Operand operand, Quantized& out);
// The same for an x whose range is known (QuantizeTensorInto above).
absl::Status QuantizeOperand(const FixedPointOptions& options, std::span<const float> x,
                             std::optional<Range> range, Operand operand, Quantized& out);

// A BatchNorm's output described instead of written: y = max(x * scale[c] + shift[c], floor)
// over x's rows, as ChannelAffine (batch_norm.h) computes it.
struct ChannelAffineRows {
  ChannelRows x;
  const float* scale = nullptr;
  const float* shift = nullptr;
  float floor = 0;
  // Where x is codes: each channel's smallest and largest code (ChannelSums gathers them), or
  // null where unknown.
  const int32_t* code_min = nullptr;
  const int32_t* code_max = nullptr;
};

// QuantizeTensorInto and QuantizeOperand on y, which is computed a few thousand elements at a
// time into a per-thread buffer instead of being read from memory: the same exponent, codes,
// saturations and errors as on ChannelAffine's whole output. y's range takes a pass of its own
// unless the code extremes are known and every scale and shift is finite: then y's extremes are
// those of the affine at each channel's extreme codes (every step of the affine is monotonic in
// the code), computed by ChannelAffine itself, so the range is the same to the bit.
absl::Status QuantizeTensorInto(const ChannelAffineRows& y, int word_length, Rounding rounding,
                                uint64_t seed, uint64_t stream, Quantized& out);
absl::Status QuantizeOperand(const FixedPointOptions& options, const ChannelAffineRows& y,
                             Operand operand, Quantized& out);

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_FIXED_POINT_H_
