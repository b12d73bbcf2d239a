#include <math.h>

#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/grid.cuh"

namespace muppet::cuda {
namespace {

// ---- Kernels ----
// Arithmetic through the _rn intrinsics, which nvcc never contracts into FMAs: the CPU build
// rounds every multiply and add on its own.

__global__ void ReluKernel(const float* x, int64_t n, float* y) {
  GridStride(n, [&](int64_t i) { y[i] = x[i] < 0.0f ? 0.0f : x[i]; });
}

__global__ void ReluBackwardKernel(const float* dy, const float* y, int64_t n, float* dx) {
  GridStride(n, [&](int64_t i) {
    const int keep = __float_as_int(y[i]) > 0 ? -1 : 0;
    dx[i] = __int_as_float(__float_as_int(dy[i]) & keep);
  });
}

__global__ void AddKernel(const float* a, const float* b, int64_t n, float floor, float* out) {
  GridStride(n, [&](int64_t i) {
    const float sum = __fadd_rn(a[i], b[i]);
    out[i] = sum < floor ? floor : sum;
  });
}

__global__ void SgdKernel(SgdStep s, const float* grad, int64_t n, float* w, float* v) {
  GridStride(n, [&](int64_t i) {
    const float g = __fadd_rn(grad[i], __fmul_rn(s.weight_decay, w[i]));
    const float velocity = s.first ? g : __fadd_rn(__fmul_rn(s.momentum, v[i]), g);
    v[i] = velocity;
    const float update = s.nesterov ? __fadd_rn(g, __fmul_rn(s.momentum, velocity)) : velocity;
    w[i] = __fsub_rn(w[i], __fmul_rn(s.lr, update));
  });
}

// One thread per row: classification heads have few classes.
__global__ void SoftmaxCrossEntropyKernel(const float* logits, const int32_t* labels, int64_t n,
                                          int64_t k, float* probabilities, double* row_loss,
                                          int32_t* row_correct) {
  GridStride(n, [&](int64_t row) {
    const float* z = logits + row * k;
    float* p = probabilities + row * k;
    const int32_t label = labels[row];
    if (label < 0 || label >= k) {
      row_correct[row] = -1;
      return;
    }
    int64_t arg_max = 0;
    for (int64_t j = 1; j < k; ++j) {
      if (z[j] > z[arg_max]) arg_max = j;
    }
    const float max = z[arg_max];
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += p[j] = expf(__fsub_rn(z[j], max));
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < k; ++j) p[j] = __fmul_rn(p[j], inv);
    row_loss[row] = log(sum) - static_cast<double>(__fsub_rn(z[label], max));
    row_correct[row] = arg_max == label;
  });
}

__global__ void SoftmaxCrossEntropyBackwardKernel(const float* probabilities, const int32_t* labels,
                                                  int64_t n, int64_t k, float inv_batch,
                                                  float* grad) {
  GridStride(n * k, [&](int64_t i) {
    const float onehot = i % k == labels[i / k] ? 1.0f : 0.0f;
    grad[i] = __fmul_rn(__fsub_rn(probabilities[i], onehot), inv_batch);
  });
}

}  // namespace

absl::Status Relu(const float* x, int64_t n, float* y, cudaStream_t stream) {
  return LaunchGridStride(ReluKernel, n, stream, x, n, y);
}

absl::Status ReluBackward(const float* dy, const float* y, int64_t n, float* dx,
                          cudaStream_t stream) {
  return LaunchGridStride(ReluBackwardKernel, n, stream, dy, y, n, dx);
}

absl::Status AddInto(const float* a, const float* b, int64_t n, float floor, float* out,
                     cudaStream_t stream) {
  return LaunchGridStride(AddKernel, n, stream, a, b, n, floor, out);
}

absl::Status Sgd(const SgdStep& step, const float* grad, int64_t n, float* w, float* v,
                 cudaStream_t stream) {
  return LaunchGridStride(SgdKernel, n, stream, step, grad, n, w, v);
}

absl::Status SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                                 float* probabilities, double* row_loss, int32_t* row_correct,
                                 cudaStream_t stream) {
  return LaunchGridStride(SoftmaxCrossEntropyKernel, n, stream, logits, labels, n, k, probabilities,
                          row_loss, row_correct);
}

absl::Status SoftmaxCrossEntropyBackward(const float* probabilities, const int32_t* labels,
                                         int64_t n, int64_t k, int64_t batch, float* grad,
                                         cudaStream_t stream) {
  const float inv_batch = 1.0f / static_cast<float>(batch);
  return LaunchGridStride(SoftmaxCrossEntropyBackwardKernel, n * k, stream, probabilities, labels,
                          n, k, inv_batch, grad);
}

}  // namespace muppet::cuda
