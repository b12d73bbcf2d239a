// The fixed-point passes of a convolution on the tensor cores, as Conv2d's (and, a fully
// connected layer being a 1x1 convolution of 1x1 images, Linear's) FixedPointForward and
// FixedPointBackward compute them: the bias rounded, input and weights quantised, their codes
// convolved and the output rounded; then the output gradient quantised, the weight and bias
// gradients from codes and rounded, the input gradient from codes. Every pointer is device
// memory; calls enqueue on the context's stream and wait where a quantisation does.
#ifndef MUPPET_WORKER_GPU_FIXED_CONV_H_
#define MUPPET_WORKER_GPU_FIXED_CONV_H_

#include "absl/status/status.h"
#include "kernels/common/conv_geometry.h"
#include "worker/gpu/context.h"
#include "worker/gpu/device_tensor.h"
#include "worker/gpu/fixed_point.h"
#include "worker/nn/precision.h"

namespace muppet::gpu {

class FixedConvPasses {
 public:
  // `precision` (the CPU layer's) and `context` must outlive this.
  FixedConvPasses(const LayerPrecision& precision, GpuContext& context)
      : fixed_(precision, context.quantize), context_(context) {}

  // Whether the model computes in fixed point now.
  bool active() const { return fixed_.active(); }

  // y from x and the weights w (bias O floats or null), at the precision's word length.
  // INVALID_ARGUMENT naming a non-finite element or a geometry the kernels refuse; INTERNAL
  // naming the call that failed.
  absl::Status Forward(const kernels::ConvGeometry& g, const float* x, const float* w,
                       const float* bias, float* y);

  // dw and db (null for none) rounded onto the grid, and dx unless it is null, from dy, at the
  // word length of the last Forward. Errors as Forward's.
  absl::Status Backward(const kernels::ConvGeometry& g, const float* dy, float* dw, float* db,
                        float* dx);

 private:
  template <typename Code>
  const Code* Codes(kernels::Operand operand) const {
    return static_cast<const Code*>(fixed_.codes(operand));
  }

  DeviceFixedPoint fixed_;
  GpuContext& context_;
  int bits_ = 0;  // Of the last Forward, which its Backward uses.
  int x_exponent_ = 0, w_exponent_ = 0;
  DeviceTensor rounded_bias_;
};

}  // namespace muppet::gpu

#endif  // MUPPET_WORKER_GPU_FIXED_CONV_H_
