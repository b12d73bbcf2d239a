#include "worker/gpu/fixed_conv.h"

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/status_macros.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/quantize.h"

namespace muppet::gpu {
namespace {

// The context's tensor-core convolution of `Code`s, made at its first use.
template <typename Code>
absl::StatusOr<cuda::TensorCoreConv<Code>*> SharedConv(GpuContext& c) {
  std::optional<cuda::TensorCoreConv<Code>>& slot = [&]() -> auto& {
    if constexpr (std::is_same_v<Code, int8_t>) return c.conv_s8;
    if constexpr (std::is_same_v<Code, __half>) return c.conv_f16;
    if constexpr (std::is_same_v<Code, int16_t>) return c.conv_s16;
  }
  ();
  if (!slot.has_value()) {
    absl::StatusOr<cuda::TensorCoreConv<Code>> conv = cuda::TensorCoreConv<Code>::Create();
    if (!conv.ok()) return conv.status();
    slot.emplace(*std::move(conv));
  }
  return &*slot;
}

// Runs fn(conv, codes) with the tensor-core convolution of `bits`' code type, codes being a null
// pointer of that type (to cast the operands' codes to).
template <typename Fn>
absl::Status WithTensorCoreConv(GpuContext& c, int bits, Fn&& fn) {
  return WithCodeType(bits, [&](auto* code) -> absl::Status {
    using Code = std::remove_pointer_t<decltype(code)>;
    absl::StatusOr<cuda::TensorCoreConv<Code>*> conv = SharedConv<Code>(c);
    if (!conv.ok()) return conv.status();
    return fn(**conv, static_cast<const Code*>(nullptr));
  });
}

}  // namespace

FixedConvPasses::FixedConvPasses(const LayerPrecision& precision, GpuContext& context)
    : fixed_(precision, context.quantize), context_(context), routes_([stream = context.stream] {
        cudaStreamSynchronize(stream);  // A failure shows in the pass's own status.
        return SteadySeconds();
      }) {}

absl::Status FixedConvPasses::RunPass(LayerPass pass, const kernels::ConvGeometry& g,
                                      const std::function<absl::Status(FixedPointRoute)>& run) {
  NumericPrecision& precision = *fixed_.precision().numeric();
  const int64_t saturations = precision.saturations;
  absl::Status status;
  const auto attempt = [&](FixedPointRoute route) {
    if (status.ok()) status = run(route);
  };
  const CodeType type = CodeTypeFor(bits_);
  const int code_bits = type == CodeType::kInt8 ? 8 : type == CodeType::kHalf ? 12 : 16;
  const FixedPointRoute route = routes_.Choose(
      fixed_.precision().name(), pass, {g.n, g.c, g.h, g.w}, code_bits, precision.route, attempt,
      [&] { precision.saturations = saturations; }, &precision.route_choices);
  attempt(route);
  return status;
}

absl::StatusOr<const float*> FixedConvPasses::Grid(kernels::Operand operand, int64_t n,
                                                   int exponent) {
  GridOperand& grid = grid_[static_cast<int>(operand)];
  if (grid.ready) return grid.values.data();
  MUPPET_RETURN_IF_ERROR(grid.values.Resize({n}));
  const cudaStream_t stream = context_.stream;
  const void* codes = fixed_.codes(operand);
  float* x = grid.values.data();
  MUPPET_RETURN_IF_ERROR(WithCodeType(bits_, [&](auto* code) {
    using Code = std::remove_pointer_t<decltype(code)>;
    return cuda::Dequantize(static_cast<const Code*>(codes), n, exponent, x, stream);
  }));
  grid.ready = true;
  return x;
}

absl::StatusOr<cuda::CudnnConv*> FixedConvPasses::GridConv(const kernels::ConvGeometry& g) {
  if (auto it = grid_convs_.find(g.n); it != grid_convs_.end()) return &it->second;
  absl::StatusOr<cuda::CudnnConv> conv =
      cuda::CudnnConv::Create(context_.cudnn, g, cuda::FloatMath::kExact);
  if (!conv.ok()) return conv.status();
  return &grid_convs_.emplace(g.n, *std::move(conv)).first->second;
}

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
  for (GridOperand& grid : grid_) grid.ready = false;
  MUPPET_RETURN_IF_ERROR(RunPass(LayerPass::kForward, g, [&](FixedPointRoute route) {
    if (route == FixedPointRoute::kGrid) {
      absl::StatusOr<const float*> gx = Grid(kernels::Operand::kInput, xs, x_exponent_);
      if (!gx.ok()) return gx.status();
      absl::StatusOr<const float*> gw = Grid(kernels::Operand::kWeights, ws, w_exponent_);
      if (!gw.ok()) return gw.status();
      absl::StatusOr<cuda::CudnnConv*> conv = GridConv(g);
      if (!conv.ok()) return conv.status();
      return (*conv)->Forward(*gx, *gw, rounded_bias, y);
    }
    return WithTensorCoreConv(context_, bits_, [&](auto& conv, auto codes) {
      using Code = std::remove_cv_t<std::remove_pointer_t<decltype(codes)>>;
      return conv.Forward(g, Codes<Code>(kernels::Operand::kInput),
                          Codes<Code>(kernels::Operand::kWeights),
                          CodeScale(x_exponent_ + w_exponent_), rounded_bias, y, stream);
    });
  }));
  return fixed_.Round(y, g.n * g.out_h() * g.out_w() * g.o, Rounded::kOutput, stream);
}

absl::Status FixedConvPasses::Backward(const kernels::ConvGeometry& g, const float* dy, float* dw,
                                       float* db, float* dx) {
  const cudaStream_t stream = context_.stream;
  const int64_t xs = g.n * g.h * g.w * g.c, ws = g.o * g.kernel * g.kernel * g.c;
  const int64_t ys = g.n * g.out_h() * g.out_w() * g.o;
  absl::StatusOr<int> sdy = fixed_.Quantize(dy, ys, kernels::Operand::kGradient, stream);
  if (!sdy.ok()) return sdy.status();
  grid_[static_cast<int>(kernels::Operand::kGradient)].ready = false;
  const auto grid_dy = [&] { return Grid(kernels::Operand::kGradient, ys, *sdy); };
  MUPPET_RETURN_IF_ERROR(RunPass(LayerPass::kBackwardWeights, g, [&](FixedPointRoute route) {
    if (route == FixedPointRoute::kGrid) {
      absl::StatusOr<const float*> gdy = grid_dy();
      if (!gdy.ok()) return gdy.status();
      absl::StatusOr<const float*> gx = Grid(kernels::Operand::kInput, xs, x_exponent_);
      if (!gx.ok()) return gx.status();
      absl::StatusOr<cuda::CudnnConv*> conv = GridConv(g);
      if (!conv.ok()) return conv.status();
      MUPPET_RETURN_IF_ERROR((*conv)->BackwardWeights(*gx, *gdy, dw));
      return db != nullptr ? (*conv)->BackwardBias(*gdy, db) : absl::OkStatus();
    }
    return WithTensorCoreConv(context_, bits_, [&](auto& conv, auto codes) {
      using Code = std::remove_cv_t<std::remove_pointer_t<decltype(codes)>>;
      return conv.BackwardWeights(g, Codes<Code>(kernels::Operand::kGradient),
                                  Codes<Code>(kernels::Operand::kInput),
                                  CodeScale(*sdy + x_exponent_), CodeScale(*sdy), dw, db, stream);
    });
  }));
  MUPPET_RETURN_IF_ERROR(
      fixed_.Round(dw, g.o * g.kernel * g.kernel * g.c, Rounded::kWeightGradient, stream));
  if (db != nullptr) {
    MUPPET_RETURN_IF_ERROR(fixed_.Round(db, g.o, Rounded::kBiasGradient, stream));
  }
  if (dx == nullptr) return absl::OkStatus();
  return RunPass(LayerPass::kBackwardData, g, [&](FixedPointRoute route) {
    if (route == FixedPointRoute::kGrid) {
      absl::StatusOr<const float*> gdy = grid_dy();
      if (!gdy.ok()) return gdy.status();
      absl::StatusOr<const float*> gw = Grid(kernels::Operand::kWeights, ws, w_exponent_);
      if (!gw.ok()) return gw.status();
      absl::StatusOr<cuda::CudnnConv*> conv = GridConv(g);
      if (!conv.ok()) return conv.status();
      return (*conv)->BackwardData(*gw, *gdy, /*accumulate=*/false, dx);
    }
    return WithTensorCoreConv(context_, bits_, [&](auto& conv, auto codes) {
      using Code = std::remove_cv_t<std::remove_pointer_t<decltype(codes)>>;
      return conv.BackwardData(g, Codes<Code>(kernels::Operand::kGradient),
                               Codes<Code>(kernels::Operand::kWeights),
                               CodeScale(*sdy + w_exponent_), nullptr, dx, stream);
    });
  });
}

}  // namespace muppet::gpu
