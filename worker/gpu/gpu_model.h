// A model of the CPU engine (worker/models) trained on one GPU: its network planned (plan.h) and
// built from the GPU engine's layers (gpu_layers.h) with the CPU model's parameters, at the CPU
// model's precision (FP32 or a fixed-point level, which may change between steps, and the same
// rounding bits), softmax cross-entropy and SGD as the CPU engine computes them
// (kernels/cuda/elementwise.h), and the results copied back into the CPU model on request (for
// checkpoints and reports). Images are staged through pinned host memory and copied on a stream
// of their own, so that a batch's upload overlaps the previous step's backward pass and update.
// The trainer drives it as its StepOffload.
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
#include "worker/train/step_offload.h"

namespace muppet::gpu {

class GpuModel : public StepOffload {
 public:
  // Plans `model` for batches of up to `max_batch` images and builds it on the current CUDA
  // device with its own stream, for SGD with `sgd`. UNIMPLEMENTED naming the layer the GPU
  // engine lacks (plan.h); INVALID_ARGUMENT for a batch below 1; FAILED_PRECONDITION naming
  // cuDNN or cuBLASLt when the library cannot be loaded (lazy_library.h); INTERNAL naming the
  // CUDA, cuDNN or cuBLASLt call that failed. `model` must outlive the result, which holds its
  // parameters from now on: the CPU model's values are stale until Download. One thread at a time.
  static absl::StatusOr<std::unique_ptr<GpuModel>> Create(Model& model, int64_t max_batch,
                                                          cuda::FloatMath math,
                                                          const SgdOptions& sgd);
  ~GpuModel() override;

  // StepOffload (step_offload.h): upload the batch through pinned memory, forward, loss and
  // backward, waiting for the loss. INVALID_ARGUMENT naming the shape or the first label outside
  // [0, classes) (nothing changed then), or at a fixed-point level naming a non-finite element a
  // layer met (training diverged); INTERNAL naming the call that failed.
  absl::StatusOr<SoftmaxCrossEntropy::Result> Step(const Batch& batch) override;
  absl::Status Update(double lr) override;
  absl::StatusOr<SoftmaxCrossEntropy::Result> Evaluate(const Batch& batch) override;
  absl::Status DownloadParameters() override;
  // Also the velocities into `sgd`'s momentum buffers (in the model's parameter order).
  absl::Status Download(Sgd& sgd) override;
  absl::Status Upload(const Sgd& sgd) override;

  cuda::FloatMath math() const { return context_->math; }

 private:
  GpuModel(Model& model, std::unique_ptr<GpuContext> context, int64_t max_batch,
           const SgdOptions& sgd)
      : model_(model), context_(std::move(context)), max_batch_(max_batch), sgd_(sgd) {}
  // One batch's pass: its upload (Stage), the forward pass, the loss and, in training, the
  // backward pass, all enqueued before it waits for the rows' results (pinned buffers).
  absl::StatusOr<SoftmaxCrossEntropy::Result> Pass(const Batch& batch, Mode mode);
  // Checks the batch, stages it in the next of the two input buffers and enqueues its copy on
  // the copy stream, which the compute stream then waits for; returns that buffer's index.
  absl::StatusOr<int> Stage(const Batch& batch);

  Model& model_;
  std::unique_ptr<GpuContext> context_;
  int64_t max_batch_;
  SgdOptions sgd_;
  int64_t classes_ = 0;
  std::unique_ptr<GpuLayer> network_;
  std::vector<DeviceParameter*> parameters_;
  bool sgd_started_ = false;
  // Input, double-buffered: a batch's copy (on copy_stream_) overlaps the previous step's
  // backward pass and update, which still read the other buffer's images and labels.
  struct Staging {
    float* pinned_images = nullptr;
    int32_t* pinned_labels = nullptr;
    DeviceTensor images;
    std::optional<cuda::DeviceBuffer<int32_t>> labels;
    cudaEvent_t copied = nullptr;  // After the buffer's last copy.
  };
  Staging staging_[2];
  int next_staging_ = 0;
  cudaStream_t copy_stream_ = nullptr;
  cudaEvent_t results_ready_ = nullptr;
  // Per-row loss and correctness, out.
  double* pinned_row_loss_ = nullptr;
  int32_t* pinned_row_correct_ = nullptr;
  std::optional<cuda::DeviceBuffer<int32_t>> row_correct_;
  std::optional<cuda::DeviceBuffer<double>> row_loss_;
  DeviceTensor probabilities_, grad_logits_;
};

}  // namespace muppet::gpu

#endif  // MUPPET_WORKER_GPU_GPU_MODEL_H_
