// BatchNorm over channels-last float tensors through cuDNN's spatial mode, as the CPU engine's
// (worker/nn/batch_norm.h) computes it: in training, each channel normalised by its batch mean
// and biased variance, and the running averages moved by `momentum` towards the batch mean and
// the unbiased variance (PyTorch's convention, which is also cuDNN's); in evaluation, the running
// statistics. The ReLU the CPU layer may fuse runs as its own kernel (elementwise.h).
#ifndef MUPPET_KERNELS_CUDA_BATCH_NORM_H_
#define MUPPET_KERNELS_CUDA_BATCH_NORM_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/cuda/cudnn.h"

namespace muppet::cuda {

// One layer's BatchNorm at one input shape (n, c, h, w). Every pointer is device memory; the
// per-channel ones hold c floats. Calls enqueue on the handle's stream; not thread-safe.
class CudnnBatchNorm {
 public:
  // INVALID_ARGUMENT naming the dimension cuDNN cannot take, a momentum outside [0, 1], or an
  // epsilon below cuDNN's minimum (CUDNN_BN_MIN_EPSILON, 1e-5: PyTorch's default);
  // INTERNAL naming the cuDNN call that failed. `cudnn` must outlive the result.
  static absl::StatusOr<CudnnBatchNorm> Create(Cudnn& cudnn, int64_t n, int64_t c, int64_t h,
                                               int64_t w, double momentum, double epsilon);

  // y = gamma (x - mean) / sqrt(var + epsilon) + beta with the batch's statistics; moves
  // running_mean and running_var, and writes the batch mean and 1 / sqrt(var + epsilon) into
  // saved_mean and saved_inv_std for Backward.
  absl::Status ForwardTraining(const float* x, const float* gamma, const float* beta, float* y,
                               float* running_mean, float* running_var, float* saved_mean,
                               float* saved_inv_std);
  // The same with the running statistics, which stay as they are.
  absl::Status ForwardInference(const float* x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, float* y);
  // dx, dgamma and dbeta from the training forward's x and saved statistics and dy.
  absl::Status Backward(const float* x, const float* dy, const float* gamma,
                        const float* saved_mean, const float* saved_inv_std, float* dx,
                        float* dgamma, float* dbeta);

 private:
  CudnnBatchNorm(Cudnn& cudnn, double momentum, double epsilon)
      : cudnn_(&cudnn), momentum_(momentum), epsilon_(epsilon) {}

  Cudnn* cudnn_;
  double momentum_;
  double epsilon_;
  TensorDescriptor x_, channels_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_BATCH_NORM_H_
