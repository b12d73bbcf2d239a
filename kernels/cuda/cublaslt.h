// The cuBLASLt plumbing the GEMMs share (gemm_s8.h, gemm_f16.h, linear.h): a handle with its
// workspace, and one matmul of row-major operands with every cuBLASLt status checked.
#ifndef MUPPET_KERNELS_CUDA_CUBLASLT_H_
#define MUPPET_KERNELS_CUDA_CUBLASLT_H_

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "absl/status/statusor.h"
#include "kernels/cuda/gemm_rules.h"

namespace muppet::cuda {

// The element types of one GEMM: operands, output, accumulation, and alpha/beta.
struct CublasLtTypes {
  cudaDataType_t operands;
  cudaDataType_t output;
  cublasComputeType_t compute;
  cudaDataType_t scale;
};

// A row-major operand of a GEMM: the matrix, or its transpose when `transposed`, at `data`, with
// rows `ld` elements apart.
struct GemmOperand {
  const void* data = nullptr;
  int64_t ld = 0;
  bool transposed = false;
};

class CublasLt {
 public:
  // INTERNAL naming the call when cuBLASLt or its workspace cannot be had.
  static absl::StatusOr<CublasLt> Create();
  ~CublasLt();
  CublasLt(CublasLt&& other) noexcept;
  CublasLt& operator=(CublasLt&&) = delete;
  CublasLt(const CublasLt&) = delete;

  // Enqueues C (m x n, row-major) = alpha A (m x k) B (n x k)^T + beta C, A and B row-major with
  // rows `lda` and `ldb` elements apart (k for whole matrices, more for a chunk of K), on
  // `stream`; alpha and beta point at values of `types.scale`. In cuBLASLt's column-major terms:
  // C^T = op(B^T) A^T with op the transpose, both operands K-major. INTERNAL naming the cuBLASLt
  // call that failed. The caller checks the shape (gemm_rules.h).
  absl::Status MatmulTN(const CublasLtTypes& types, const GemmShape& shape, const void* alpha,
                        const void* beta, const void* a, int64_t lda, const void* b, int64_t ldb,
                        void* c, cudaStream_t stream);

  // Enqueues C (m x n, row-major, rows n apart) = alpha op(A) op(B) + beta C with op(A) m x k and
  // op(B) k x n, on `stream`. Any arrangement: for the floating-point GEMMs (the integer tensor
  // cores take TN only, MatmulTN). INTERNAL naming the cuBLASLt call that failed.
  absl::Status Matmul(const CublasLtTypes& types, const GemmShape& shape, const void* alpha,
                      const void* beta, const GemmOperand& a, const GemmOperand& b, void* c,
                      cudaStream_t stream);

 private:
  CublasLt(cublasLtHandle_t handle, void* workspace) : handle_(handle), workspace_(workspace) {}

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_CUBLASLT_H_
