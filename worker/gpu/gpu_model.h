// A model of the CPU engine (worker/models) trained on one GPU: its network planned (plan.h) and
// built from the GPU engine's layers (gpu_layers.h) with the CPU model's parameters, at the CPU
// model's precision (FP32 or a fixed-point level, which may change between steps, and the same
// rounding bits), softmax cross-entropy and SGD as the CPU engine computes them
// (kernels/cuda/elementwise.h), and the results copied back into the CPU model on request (for
// checkpoints, evaluation elsewhere and reports). Images are staged through pinned host memory and
// copied asynchronously on the rank's stream.
#ifndef MUPPET_WORKER_GPU_GPU_MODEL_H_
#define MUPPET_WORKER_GPU_GPU_MODEL_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/float_math.h"
#include "worker/gpu/gpu_layers.h"
#include "worker/models/model.h"
#include "worker/optim/sgd.h"

namespace muppet::gpu {

// The batch's mean loss and the rows whose arg-max is the label.
struct StepResult {
  double loss = 0;
  int64_t correct = 0;
};

class GpuModel {
 public:
  // Plans `model` for batches of up to `max_batch` images and builds it on the current CUDA
  // device with its own stream. UNIMPLEMENTED naming the layer the GPU engine lacks (plan.h);
  // INVALID_ARGUMENT for a batch below 1; INTERNAL naming the CUDA, cuDNN or cuBLASLt call that
  // failed. `model` must outlive the result, which holds its parameters from now on: the CPU
  // model's values are stale until Download.
  static absl::StatusOr<std::unique_ptr<GpuModel>> Create(Model& model, int64_t max_batch,
                                                          cuda::FloatMath math);
  ~GpuModel();

  // One SGD step (options as worker/optim/sgd.h) at learning rate `lr` on `images` (N, C, H, W)
  // with `labels` (N values): upload, forward, loss, backward, update. Advances the model's
  // precision step first, as the trainer does before a CPU forward pass. Waits for the step's
  // loss. INVALID_ARGUMENT naming the shape or the first label outside [0, classes), in which
  // case no parameter changed, or (at a fixed-point level) naming a non-finite element a layer
  // met (training diverged); INTERNAL naming the call that failed.
  absl::StatusOr<StepResult> TrainStep(const Tensor& images, std::span<const int32_t> labels,
                                       const SgdOptions& options, double lr);

  // The loss and correct rows of `images` in evaluation mode (running statistics), nothing
  // updated but the precision step. Errors as TrainStep's.
  absl::StatusOr<StepResult> Evaluate(const Tensor& images, std::span<const int32_t> labels);

  // Copies every parameter and buffer into the CPU model, waiting for the device.
  absl::Status Download();

  cuda::FloatMath math() const { return context_->math; }

 private:
  GpuModel(Model& model, std::unique_ptr<GpuContext> context, int64_t max_batch)
      : model_(model), context_(std::move(context)), max_batch_(max_batch) {}
  // Uploads the batch through the pinned buffer and runs the forward pass and the loss into
  // probabilities_, leaving the rows' results in the pinned result buffers.
  absl::StatusOr<StepResult> ForwardAndLoss(const Tensor& images, std::span<const int32_t> labels,
                                            Mode mode);
  absl::Status Update(const SgdOptions& options, double lr);

  Model& model_;
  std::unique_ptr<GpuContext> context_;
  int64_t max_batch_;
  int64_t classes_ = 0;
  std::unique_ptr<GpuLayer> network_;
  std::vector<DeviceParameter*> parameters_;
  bool sgd_started_ = false;
  // Pinned host staging: images and labels in, per-row loss and correctness out.
  float* pinned_images_ = nullptr;
  int32_t* pinned_labels_ = nullptr;
  double* pinned_row_loss_ = nullptr;
  int32_t* pinned_row_correct_ = nullptr;
  DeviceTensor images_;
  std::optional<cuda::DeviceBuffer<int32_t>> labels_, row_correct_;
  std::optional<cuda::DeviceBuffer<double>> row_loss_;
  DeviceTensor probabilities_, grad_logits_;
};

}  // namespace muppet::gpu

#endif  // MUPPET_WORKER_GPU_GPU_MODEL_H_
