#include "kernels/cpu/fixed_point.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/fixed_point_internal.h"

namespace muppet::kernels {
namespace {

// Scaling by 2^-exponent is exact while it is a normal float; exponents near the float limits
// (a tensor of tiny or huge values) go through double, rounding once.
template <typename Code>
void DequantizeCodes(std::span<const Code> codes, int exponent, std::span<float> x) {
  if (const float scale = ExactDequantizeFactor(exponent); scale != 0) {
#pragma omp parallel for schedule(static) if (x.size() >= (1 << 16))
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(codes[i]) * scale;
    return;
  }
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(std::ldexp(static_cast<double>(codes[i]), -exponent));
  }
}

}  // namespace

float ExactDequantizeFactor(int exponent) {
  return -exponent >= -126 && -exponent <= 127 ? std::ldexp(1.0f, -exponent) : 0.0f;
}

void Dequantize(std::span<const int8_t> codes, int exponent, std::span<float> x) {
  DequantizeCodes(codes, exponent, x);
}
void Dequantize(std::span<const int16_t> codes, int exponent, std::span<float> x) {
  DequantizeCodes(codes, exponent, x);
}
void Dequantize(std::span<const int32_t> codes, int exponent, std::span<float> x) {
  DequantizeCodes(codes, exponent, x);
}

void Dequantize(const Quantized& q, std::span<float> x) {
  if (q.word_length <= 8) {
    Dequantize(std::span<const int8_t>(q.s8), q.exponent, x);
  } else {
    Dequantize(std::span<const int16_t>(q.s16), q.exponent, x);
  }
}

uint64_t OperandStream(const FixedPointOptions& options, Operand operand) {
  return options.step * 3 + static_cast<uint64_t>(operand);
}

namespace internal {

absl::Status CheckWordLength(int word_length) {
  if (word_length >= 2 && word_length <= 16) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("word length must be in [2, 16], got ", word_length));
}

void PrepareCodes(int word_length, int exponent, int64_t n, Quantized& out) {
  out.word_length = word_length;
  out.exponent = exponent;
  if (word_length <= 8) {
    out.s16.clear();
    out.s8.resize(n);
  } else {
    out.s8.clear();
    out.s16.resize(n);
  }
}

}  // namespace internal

absl::Status QuantizeTensorInto(std::span<const float> x, int word_length, Rounding rounding,
                                uint64_t seed, uint64_t stream, Quantized& out) {
  return QuantizeTensorInto(x, std::nullopt, word_length, rounding, seed, stream, out);
}

absl::Status QuantizeTensorInto(std::span<const float> x, std::optional<Range> range,
                                int word_length, Rounding rounding, uint64_t seed, uint64_t stream,
                                Quantized& out) {
  if (absl::Status s = internal::CheckWordLength(word_length); !s.ok()) return s;
  if (!range.has_value()) {
    absl::StatusOr<Range> scanned = MinMax(x);
    if (!scanned.ok()) return scanned.status();
    range = *scanned;
  }
  internal::PrepareCodes(word_length, ScaleExponent(*range, word_length),
                         static_cast<int64_t>(x.size()), out);
  const QuantizeOptions options{.word_length = word_length,
                                .exponent = out.exponent,
                                .rounding = rounding,
                                .seed = seed,
                                .stream = stream};
  out.saturated = word_length <= 8 ? Quantize(x, options, std::span<int8_t>(out.s8))
                                   : Quantize(x, options, std::span<int16_t>(out.s16));
  return absl::OkStatus();
}

absl::StatusOr<Quantized> QuantizeTensor(std::span<const float> x, int word_length,
                                         Rounding rounding, uint64_t seed, uint64_t stream) {
  Quantized q;
  if (absl::Status s = QuantizeTensorInto(x, word_length, rounding, seed, stream, q); !s.ok()) {
    return s;
  }
  return q;
}

absl::StatusOr<int64_t> RoundToFixedPoint(std::span<float> x, int word_length, Rounding rounding,
                                          uint64_t seed, uint64_t stream) {
  return RoundToFixedPoint(x, std::nullopt, word_length, rounding, seed, stream);
}

absl::StatusOr<int64_t> RoundToFixedPoint(std::span<float> x, std::optional<Range> range,
                                          int word_length, Rounding rounding, uint64_t seed,
                                          uint64_t stream) {
  thread_local Quantized q;  // Reused: the codes are only a stepping stone.
  if (absl::Status s = QuantizeTensorInto(x, range, word_length, rounding, seed, stream, q);
      !s.ok()) {
    return s;
  }
  Dequantize(q, x);
  return q.saturated;
}

absl::Status QuantizeOperand(const FixedPointOptions& o, std::span<const float> x, Operand operand,
                             Quantized& out) {
  return QuantizeOperand(o, x, std::nullopt, operand, out);
}

absl::Status QuantizeOperand(const FixedPointOptions& o, std::span<const float> x,
                             std::optional<Range> range, Operand operand, Quantized& out) {
  return QuantizeTensorInto(x, range, o.word_length, o.rounding, o.seed, OperandStream(o, operand),
                            out);
}

}  // namespace muppet::kernels
