// The GPU engine's layers: the CPU engine's layers (worker/nn) on device tensors, built from a
// plan (plan.h) and reading their configuration, parameters and precision from the CPU layers.
// Each computes as its CPU counterpart does: in FP32 (exact, or on TF32 tensor cores), and at
// the fixed-point levels the convolutions and fully connected layers from codes drawn with the
// CPU layers' rounding bits, by the route the precision chooses (fixed_conv.h), their outputs and
// gradients rounded as the CPU layers round them; BatchNorm, ReLU and max pooling stay FP32,
// average pooling rounds, as on the CPU. Every call enqueues on the context's stream; nothing
// waits for the device except where a contract says so.
#ifndef MUPPET_WORKER_GPU_GPU_LAYERS_H_
#define MUPPET_WORKER_GPU_GPU_LAYERS_H_

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/gpu/context.h"
#include "worker/gpu/device_tensor.h"
#include "worker/gpu/plan.h"
#include "worker/nn/layer.h"

namespace muppet::gpu {

// A parameter on the device: its value, the gradient of the last Backward, and SGD's velocity.
// `host` is the CPU layer's parameter, which the value is uploaded from and downloaded to.
struct DeviceParameter {
  Parameter* host = nullptr;
  DeviceTensor value;
  DeviceTensor grad;
  DeviceTensor velocity;
};

class GpuLayer {
 public:
  virtual ~GpuLayer() = default;

  // The output for `input` (any batch; the other dimensions the plan's), owned by the layer and
  // valid until its next Forward. `input` must stay unchanged until Backward returns. INTERNAL
  // naming the CUDA, cuDNN or cuBLASLt call that failed.
  virtual absl::StatusOr<const DeviceTensor*> Forward(const DeviceTensor& input, Mode mode) = 0;

  // Given dLoss/dOutput of the last training Forward, writes the parameters' gradients and
  // returns dLoss/dInput (owned by the layer, valid until its next Backward), or null when the
  // input gradient is not required.
  virtual absl::StatusOr<const DeviceTensor*> Backward(const DeviceTensor& grad_output) = 0;

  // Appends this layer's device parameters (and its children's) in the CPU model's order.
  virtual void CollectParameters(std::vector<DeviceParameter*>& out) {}

  // Copies non-trainable state (BatchNorm's running statistics) into the CPU layers; waits for
  // the stream.
  virtual absl::Status DownloadBuffers() { return absl::OkStatus(); }
  // The reverse, enqueued on the stream (the CPU layers' buffers were restored).
  virtual absl::Status UploadBuffers() { return absl::OkStatus(); }

  // As Layer::SetInputGradRequired: the first layer of a network computes no input gradient.
  virtual void SetInputGradRequired(bool required) { input_grad_required_ = required; }

 protected:
  bool input_grad_required_ = true;
};

// The layer tree of `plan`, with its parameters and buffers uploaded from the CPU layers
// (waiting for the copies). UNIMPLEMENTED for an op the engine lacks; INTERNAL naming the call
// that failed. `context` and the CPU layers must outlive the result.
absl::StatusOr<std::unique_ptr<GpuLayer>> BuildGpuLayer(const GpuOp& plan, GpuContext& context);

}  // namespace muppet::gpu

#endif  // MUPPET_WORKER_GPU_GPU_LAYERS_H_
