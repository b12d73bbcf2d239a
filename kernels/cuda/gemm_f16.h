// The 9-12-bit levels' GEMM on FP16 tensor cores through cuBLASLt: C (m x n, float, row-major) =
// A (m x k) * B (n x k)^T with A and B FP16 values that are codes of at most 12 bits (exact in
// FP16: the quantiser writes them, quantize.h), accumulated in FP32.
//
// Where it differs from exact int32 accumulation: each product (at most 2^22 in magnitude) is
// exact in FP32, and so is every partial sum below 2^24; beyond that FP32 rounds, and the order
// in which the tensor cores add is theirs. A sum can then differ from the exact one by about
// k x 2^-24 x sum |products|. Codes of a dynamic fixed-point tensor are mostly far from full
// scale, so this rarely bites; tests/gpu/gemm_f16_test.cc bounds it, and exactness holds where
// k x max |product| < 2^24.
#ifndef MUPPET_KERNELS_CUDA_GEMM_F16_H_
#define MUPPET_KERNELS_CUDA_GEMM_F16_H_

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <utility>

#include "absl/status/statusor.h"
#include "kernels/cuda/cublaslt.h"
#include "kernels/cuda/gemm_rules.h"

namespace muppet::cuda {

// A cuBLASLt handle and its workspace, for one stream at a time. Not thread-safe.
class GemmF16 {
 public:
  // INTERNAL naming the call when cuBLASLt or the workspace cannot be had.
  static absl::StatusOr<GemmF16> Create();

  // Enqueues C = A * B^T on `stream` (device pointers). INVALID_ARGUMENT for a shape or pointer
  // CheckTensorCoreGemm refuses; INTERNAL naming the cuBLASLt call that failed.
  absl::Status Run(const GemmShape& shape, const __half* a, const __half* b, float* c,
                   cudaStream_t stream);

 private:
  explicit GemmF16(CublasLt lt) : lt_(std::move(lt)) {}

  CublasLt lt_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_GEMM_F16_H_
