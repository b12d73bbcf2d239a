#include "worker/gpu/fixed_conv.h"

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/check.h"

namespace muppet::gpu {
namespace {

// The context's tensor-core convolution for `bits`, made at its first use.
template <typename Conv>
absl::StatusOr<Conv*> Shared(std::optional<Conv>& slot) {
  if (!slot.has_value()) {
    absl::StatusOr<Conv> conv = Conv::Create();
    if (!conv.ok()) return conv.status();
    slot.emplace(*std::move(conv));
  }
  return &*slot;
}

// Runs fn(conv, codes) with the tensor-core convolution of `bits`' code type, codes being a null
// pointer of that type (to cast the operands' codes to).
template <typename Fn>
absl::Status WithTensorCoreConv(GpuContext& c, int bits, Fn&& fn) {
  switch (CodeTypeFor(bits)) {
    case CodeType::kInt8: {
      absl::StatusOr<cuda::ConvS8*> conv = Shared(c.conv_s8);
      if (!conv.ok()) return conv.status();
      return fn(**conv, static_cast<const int8_t*>(nullptr));
    }
    case CodeType::kHalf: {
      absl::StatusOr<cuda::ConvF16*> conv = Shared(c.conv_f16);
      if (!conv.ok()) return conv.status();
      return fn(**conv, static_cast<const __half*>(nullptr));
    }
    case CodeType::kInt16: {
      absl::StatusOr<cuda::ConvS16*> conv = Shared(c.conv_s16);
      if (!conv.ok()) return conv.status();
      return fn(**conv, static_cast<const int16_t*>(nullptr));
    }
  }
  return absl::InternalError(absl::StrCat("no code type for ", bits, " bits"));
}

}  // namespace

absl::Status FixedConvPasses::Forward(const kernels::ConvGeometry& g, const float* x,
                                      const float* w, const float* bias, float* y) {
  bits_ = fixed_.bits();
  const cudaStream_t stream = context_.stream;
  const float* rounded_bias = nullptr;
  if (bias != nullptr) {
    MUPPET_RETURN_IF_ERROR(rounded_bias_.Resize({g.o}));
    MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(rounded_bias_.data(), bias, g.o * sizeof(float),
                                                cudaMemcpyDeviceToDevice, stream));
    MUPPET_RETURN_IF_ERROR(fixed_.Round(rounded_bias_.data(), g.o, Rounded::kBias, stream));
    rounded_bias = rounded_bias_.data();
  }
  const int64_t xs = g.n * g.h * g.w * g.c, ws = g.o * g.kernel * g.kernel * g.c;
  absl::StatusOr<int> sx = fixed_.Quantize(x, xs, kernels::Operand::kInput, stream);
  if (!sx.ok()) return sx.status();
  absl::StatusOr<int> sw = fixed_.Quantize(w, ws, kernels::Operand::kWeights, stream);
  if (!sw.ok()) return sw.status();
  x_exponent_ = *sx;
  w_exponent_ = *sw;
  MUPPET_RETURN_IF_ERROR(WithTensorCoreConv(context_, bits_, [&](auto& conv, auto codes) {
    using Code = std::remove_cv_t<std::remove_pointer_t<decltype(codes)>>;
    return conv.Forward(g, Codes<Code>(kernels::Operand::kInput),
                        Codes<Code>(kernels::Operand::kWeights),
                        CodeScale(x_exponent_ + w_exponent_), rounded_bias, y, stream);
  }));
  return fixed_.Round(y, g.n * g.out_h() * g.out_w() * g.o, Rounded::kOutput, stream);
}

absl::Status FixedConvPasses::Backward(const kernels::ConvGeometry& g, const float* dy, float* dw,
                                       float* db, float* dx) {
  const cudaStream_t stream = context_.stream;
  const int64_t ys = g.n * g.out_h() * g.out_w() * g.o;
  absl::StatusOr<int> sdy = fixed_.Quantize(dy, ys, kernels::Operand::kGradient, stream);
  if (!sdy.ok()) return sdy.status();
  return WithTensorCoreConv(context_, bits_, [&](auto& conv, auto codes) -> absl::Status {
    using Code = std::remove_cv_t<std::remove_pointer_t<decltype(codes)>>;
    const Code* dy_codes = Codes<Code>(kernels::Operand::kGradient);
    MUPPET_RETURN_IF_ERROR(conv.BackwardWeights(g, dy_codes, Codes<Code>(kernels::Operand::kInput),
                                                CodeScale(*sdy + x_exponent_), CodeScale(*sdy), dw,
                                                db, stream));
    MUPPET_RETURN_IF_ERROR(
        fixed_.Round(dw, g.o * g.kernel * g.kernel * g.c, Rounded::kWeightGradient, stream));
    if (db != nullptr) {
      MUPPET_RETURN_IF_ERROR(fixed_.Round(db, g.o, Rounded::kBiasGradient, stream));
    }
    if (dx == nullptr) return absl::OkStatus();
    return conv.BackwardData(g, dy_codes, Codes<Code>(kernels::Operand::kWeights),
                             CodeScale(*sdy + w_exponent_), nullptr, dx, stream);
  });
}

}  // namespace muppet::gpu
