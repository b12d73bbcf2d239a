// The training engine's own GPU kernels besides the convolutions: ReLU and its gradient, the
// residual add, SGD with momentum, and softmax cross-entropy. Each computes what the CPU engine
// computes (worker/nn, worker/optim) in the same float operations: the element-wise ones and SGD
// bit for bit (no contraction into FMAs, which the CPU build does not emit either); the loss with
// the device's expf and log, within a few ulp of the CPU's. All enqueue on `stream` and return
// INTERNAL naming the launch that failed; pointers are device memory.
#ifndef MUPPET_KERNELS_CUDA_ELEMENTWISE_H_
#define MUPPET_KERNELS_CUDA_ELEMENTWISE_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"

namespace muppet::cuda {

// y = x < 0 ? 0 : x (std::max(x, 0.0f): -0 and NaN pass through).
absl::Status Relu(const float* x, int64_t n, float* y, cudaStream_t stream);

// dx = dy where the ReLU's output y is positive (its bits, as a signed integer, > 0), else +0;
// dy's bits are kept.
absl::Status ReluBackward(const float* dy, const float* y, int64_t n, float* dx,
                          cudaStream_t stream);

// out = max(a + b, floor) as std::max(a + b, floor); floor -infinity for a plain sum, 0 for a sum
// followed by a ReLU. out may be a or b.
absl::Status AddInto(const float* a, const float* b, int64_t n, float floor, float* out,
                     cudaStream_t stream);

// One SGD step with PyTorch's semantics (worker/optim/sgd.h): g = grad + wd w; v = mu v + g
// (v = g on the first step); w -= lr (nesterov ? g + mu v : v).
struct SgdStep {
  float lr = 0;
  float momentum = 0;
  float weight_decay = 0;
  bool nesterov = false;
  bool first = false;
};
absl::Status Sgd(const SgdStep& step, const float* grad, int64_t n, float* w, float* v,
                 cudaStream_t stream);

// Per row of logits (n x k): the softmax into probabilities, the row's loss -log p[label] (as
// log(sum) - (z[label] - max), in double) into row_loss, and into row_correct 1 where the first
// arg-max is the label, 0 where not, -1 where the label is outside [0, k) (the row's other
// outputs are then unspecified: the caller checks).
absl::Status SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                                 float* probabilities, double* row_loss, int32_t* row_correct,
                                 cudaStream_t stream);

// grad (n x k) = (probabilities - onehot(label)) / batch.
absl::Status SoftmaxCrossEntropyBackward(const float* probabilities, const int32_t* labels,
                                         int64_t n, int64_t k, int64_t batch, float* grad,
                                         cudaStream_t stream);

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_ELEMENTWISE_H_
