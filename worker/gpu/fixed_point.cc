#include "worker/gpu/fixed_point.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace muppet::gpu {

CodeType CodeTypeFor(int word_length) {
  if (word_length <= 8) return CodeType::kInt8;
  return word_length <= 12 ? CodeType::kHalf : CodeType::kInt16;
}

float CodeScale(int exponent) { return std::ldexp(1.0f, -exponent); }

cuda::QuantizeSpec DeviceFixedPoint::Spec(const RoundingBits& bits) const {
  const NumericPrecision& p = *precision_.numeric();
  return {.word_length = p.bits,
          .stochastic = p.rounding == kernels::Rounding::kStochastic,
          .seed = bits.seed,
          .stream = bits.stream};
}

void DeviceFixedPoint::Count(int64_t saturations) {
  precision_.numeric()->saturations += saturations;
}

absl::StatusOr<int> DeviceFixedPoint::Quantize(const float* x, int64_t n, kernels::Operand operand,
                                               cudaStream_t stream) {
  const cuda::QuantizeSpec spec = Spec(precision_.OperandBits(operand));
  Codes& out = codes_[static_cast<int>(operand)];
  const int64_t bytes = n * (CodeTypeFor(spec.word_length) == CodeType::kInt8 ? 1 : 2);
  absl::StatusOr<char*> memory = out.memory.Reserve(bytes, stream);
  if (!memory.ok()) return memory.status();
  out.data = *memory;
  absl::StatusOr<cuda::QuantizeResult> r = WithCodeType(spec.word_length, [&](auto* code) {
    return cuda::Quantize(x, n, spec, static_cast<decltype(code)>(out.data), workspace_, stream);
  });
  if (!r.ok()) return r.status();
  Count(r->saturations);
  return r->exponent;
}

absl::Status DeviceFixedPoint::Round(float* x, int64_t n, Rounded what, cudaStream_t stream) {
  if (precision_.Defers(what)) return absl::OkStatus();
  absl::StatusOr<char*> codes = round_codes_.Reserve(n * int64_t{sizeof(int16_t)}, stream);
  if (!codes.ok()) return codes.status();
  absl::StatusOr<cuda::QuantizeResult> r =
      cuda::RoundToGrid(x, n, Spec(precision_.RoundedBits(what)),
                        reinterpret_cast<int16_t*>(*codes), workspace_, stream);
  if (!r.ok()) return r.status();
  Count(r->saturations);
  return absl::OkStatus();
}

}  // namespace muppet::gpu
