// A fully connected layer's FP32 passes through cuBLASLt, in exact FP32 or on TF32 tensor cores
// (float_math.h), with the CPU engine's layout (worker/nn/linear.h): x (m x k) rows of
// features, weights W (n x k) one row per output, bias n floats, y (m x n). Pointers are device
// memory; every call enqueues on `stream`.
#ifndef MUPPET_KERNELS_CUDA_LINEAR_H_
#define MUPPET_KERNELS_CUDA_LINEAR_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/cuda/cublaslt.h"
#include "kernels/cuda/float_math.h"

namespace muppet::cuda {

struct LinearShape {
  int64_t m = 1;  // Rows (the batch).
  int64_t k = 1;  // Input features.
  int64_t n = 1;  // Output features.
};

// A cuBLASLt handle for one stream at a time. Not thread-safe; move-only.
class LinearF32 {
 public:
  // INTERNAL naming the call when cuBLASLt or its workspace cannot be had.
  static absl::StatusOr<LinearF32> Create(FloatMath math);

  // y = x W^T, then + bias per row when bias is not null.
  absl::Status Forward(const LinearShape& s, const float* x, const float* w, const float* bias,
                       float* y, cudaStream_t stream);
  // dx (m x k) = dy W.
  absl::Status BackwardData(const LinearShape& s, const float* dy, const float* w, float* dx,
                            cudaStream_t stream);
  // dW (n x k) = dy^T x and, when db is not null, db = the column sums of dy.
  absl::Status BackwardWeights(const LinearShape& s, const float* x, const float* dy, float* dw,
                               float* db, cudaStream_t stream);

  FloatMath math() const { return math_; }

 private:
  LinearF32(CublasLt lt, FloatMath math) : lt_(std::move(lt)), math_(math) {}
  // INVALID_ARGUMENT naming a dimension below 1.
  static absl::Status CheckShape(const LinearShape& s);
  absl::Status Gemm(const GemmShape& shape, const GemmOperand& a, const GemmOperand& b, float* c,
                    cudaStream_t stream);

  CublasLt lt_;
  FloatMath math_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_LINEAR_H_
