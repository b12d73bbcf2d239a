// The fixed-point passes of a convolution on the tensor cores, as Conv2d's (and, a fully
// connected layer being a 1x1 convolution of 1x1 images, Linear's) FixedPointForward and
// FixedPointBackward compute them: the bias rounded, input and weights quantised, their codes
// convolved and the output rounded; then the output gradient quantised, the weight and bias
// gradients from codes and rounded, the input gradient from codes. Each of the three passes runs
// by the route the model's precision asks for (worker/nn/route.h), chosen per pass, batch shape
// and code type by timing at first use under auto, as on the CPU: the integer route (the codes
// on the tensor cores) or the grid route (the codes back on their grid as floats, through
// cuDNN's exact FP32 convolution: the authors' reference numerics). The choices go into the
// model's precision's route log, code_bits 8, 12 or 16 by code type. Every pointer is device
// memory; calls enqueue on the context's stream and wait where a quantisation does.
#ifndef MUPPET_WORKER_GPU_FIXED_CONV_H_
#define MUPPET_WORKER_GPU_FIXED_CONV_H_

#include <functional>
#include <map>

#include "absl/status/status.h"
#include "kernels/common/conv_geometry.h"
#include "kernels/cuda/cudnn_conv.h"
#include "worker/gpu/context.h"
#include "worker/gpu/device_tensor.h"
#include "worker/gpu/fixed_point.h"
#include "worker/nn/precision.h"
#include "worker/nn/route.h"

namespace muppet::gpu {

class FixedConvPasses {
 public:
  // `precision` (the CPU layer's) and `context` must outlive this.
  FixedConvPasses(const LayerPrecision& precision, GpuContext& context);

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
  // An operand's grid values, dequantised from its codes at the first grid-route use after the
  // codes changed.
  struct GridOperand {
    DeviceTensor values;
    bool ready = false;
  };

  template <typename Code>
  const Code* Codes(kernels::Operand operand) const {
    return static_cast<const Code*>(fixed_.codes(operand));
  }
  // Runs `pass` by its route (timing both at first use under auto); `run(route)` computes it.
  absl::Status RunPass(LayerPass pass, const kernels::ConvGeometry& g,
                       const std::function<absl::Status(FixedPointRoute)>& run);
  // The grid values of `operand` (n codes at `exponent`).
  absl::StatusOr<const float*> Grid(kernels::Operand operand, int64_t n, int exponent);
  // The exact FP32 cuDNN convolution of g's batch, for the grid route.
  absl::StatusOr<cuda::CudnnConv*> GridConv(const kernels::ConvGeometry& g);

  DeviceFixedPoint fixed_;
  GpuContext& context_;
  RouteTable routes_;  // Its clock waits for the stream, so that trials time the device.
  int bits_ = 0;       // Of the last Forward, which its Backward uses.
  int x_exponent_ = 0, w_exponent_ = 0;
  DeviceTensor rounded_bias_;
  GridOperand grid_[3];  // By kernels::Operand.
  std::map<int64_t, cuda::CudnnConv> grid_convs_;
};

}  // namespace muppet::gpu

#endif  // MUPPET_WORKER_GPU_FIXED_CONV_H_
