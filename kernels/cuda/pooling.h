// Max and average pooling over channels-last float tensors through cuDNN, as the CPU engine's
// pooling layers (worker/nn/pooling.h) compute them: windows whose output size rounds down,
// average pooling counting padding as zeros (PyTorch's count_include_pad=True), and global
// average pooling as one window over the whole image.
#ifndef MUPPET_KERNELS_CUDA_POOLING_H_
#define MUPPET_KERNELS_CUDA_POOLING_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/cuda/cudnn.h"

namespace muppet::cuda {

struct PoolGeometry {
  int64_t n = 1, h = 1, w = 1, c = 1;  // Input.
  int64_t window_h = 2, window_w = 2;
  int64_t stride = 2;
  int64_t padding = 0;
  int64_t out_h() const { return (h + 2 * padding - window_h) / stride + 1; }
  int64_t out_w() const { return (w + 2 * padding - window_w) / stride + 1; }
};

enum class PoolKind { kMax, kAverage };

// One layer's pooling at one input shape. Pointers are device memory; calls enqueue on the
// handle's stream; not thread-safe.
class CudnnPool {
 public:
  // INVALID_ARGUMENT naming the dimension cuDNN cannot take, a padding of a whole window or more,
  // or an empty output; INTERNAL naming the cuDNN call that failed. `cudnn` must outlive the
  // result.
  static absl::StatusOr<CudnnPool> Create(Cudnn& cudnn, PoolKind kind, const PoolGeometry& g);

  // y (n x out_h x out_w x c) = the pool of x.
  absl::Status Forward(const float* x, float* y);
  // dx from the forward's x and y and dy (max pooling routes each window's gradient to its
  // maximum, which it finds again from x and y).
  absl::Status Backward(const float* x, const float* y, const float* dy, float* dx);

  const PoolGeometry& geometry() const { return g_; }

 private:
  CudnnPool(Cudnn& cudnn, const PoolGeometry& g) : cudnn_(&cudnn), g_(g) {}

  Cudnn* cudnn_;
  PoolGeometry g_;
  TensorDescriptor x_, y_;
  PoolingDescriptor pool_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_POOLING_H_
