// int8 x int8 -> int32 GEMM on tensor cores (IMMA) through cuBLASLt, exact: C (m x n, int32,
// row-major) = A (m x k) * B (n x k)^T with A and B row-major int8 codes (gemm_rules.h has
// the rules). K longer than MaxExactK is not accepted: one int32 sum must hold it.
#ifndef MUPPET_KERNELS_CUDA_GEMM_S8_H_
#define MUPPET_KERNELS_CUDA_GEMM_S8_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/cuda/cublaslt.h"
#include "kernels/cuda/gemm_rules.h"

namespace muppet::cuda {

// A cuBLASLt handle and its workspace, for one stream at a time. Not thread-safe.
class GemmS8 {
 public:
  // INTERNAL naming the call when cuBLASLt or the workspace cannot be had.
  static absl::StatusOr<GemmS8> Create();

  // Enqueues C = A * B^T on `stream` (device pointers). INVALID_ARGUMENT for a shape or pointer
  // CheckTensorCoreGemm refuses or a K over MaxExactK(8, 8); INTERNAL naming the cuBLASLt call that
  // failed. Asynchronous: C is ready once the stream reaches this point.
  absl::Status Run(const GemmShape& shape, const int8_t* a, const int8_t* b, int32_t* c,
                   cudaStream_t stream);

  // The same with A's and B's rows `lda` and `ldb` codes apart (for a chunk of a longer K).
  // INVALID_ARGUMENT also for a leading dimension below k or not a multiple of 4.
  absl::Status Run(const GemmShape& shape, const int8_t* a, int64_t lda, const int8_t* b,
                   int64_t ldb, int32_t* c, cudaStream_t stream);

 private:
  explicit GemmS8(CublasLt lt) : lt_(std::move(lt)) {}

  CublasLt lt_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_GEMM_S8_H_
