// int8 x int8 -> int32 GEMM on tensor cores (IMMA) through cuBLASLt, exact: C (m x n, int32,
// row-major) = A (m x k) * B (n x k)^T with A and B row-major int8 codes (gemm_s8_shape.h has
// the rules). K longer than MaxExactK is not accepted: one int32 sum must hold it.
#ifndef MUPPET_KERNELS_CUDA_GEMM_S8_H_
#define MUPPET_KERNELS_CUDA_GEMM_S8_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernels/cuda/gemm_s8_shape.h"

struct cublasLtContext;

namespace muppet::cuda {

// A cuBLASLt handle and its workspace, for one stream at a time. Not thread-safe.
class GemmS8 {
 public:
  // INTERNAL naming the call when cuBLASLt or the workspace cannot be had.
  static absl::StatusOr<GemmS8> Create();
  ~GemmS8();
  GemmS8(GemmS8&& other) noexcept;
  GemmS8& operator=(GemmS8&&) = delete;
  GemmS8(const GemmS8&) = delete;

  // Enqueues C = A * B^T on `stream` (device pointers). INVALID_ARGUMENT for a shape or pointer
  // CheckGemmS8 refuses or a K over MaxExactK(8, 8); INTERNAL naming the cuBLASLt call that
  // failed. Asynchronous: C is ready once the stream reaches this point.
  absl::Status Run(const GemmS8Shape& shape, const int8_t* a, const int8_t* b, int32_t* c,
                   cudaStream_t stream);

 private:
  GemmS8(cublasLtContext* handle, void* workspace) : handle_(handle), workspace_(workspace) {}

  cublasLtContext* handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_GEMM_S8_H_
