#include <cublasLt.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm_s8.h"

namespace muppet::cuda {
namespace {

// cuBLASLt's recommended workspace for Hopper.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

absl::Status FromCublas(cublasStatus_t status, const char* expr) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(expr, " failed: ", cublasLtGetStatusName(status), " (",
                                          cublasLtGetStatusString(status), ")"));
}

#define MUPPET_CUBLAS_RETURN_IF_ERROR(expr)                                  \
  do {                                                                       \
    if (absl::Status _st = FromCublas((expr), #expr); !_st.ok()) return _st; \
  } while (0)

// The descriptors of one call, destroyed with it.
struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~Descriptors() {
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (op != nullptr) cublasLtMatmulDescDestroy(op);
  }
};

}  // namespace

absl::StatusOr<GemmS8> GemmS8::Create() {
  cublasLtHandle_t handle = nullptr;
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&handle));
  void* workspace = nullptr;
  if (absl::Status s = ToStatus(cudaMalloc(&workspace, kWorkspaceBytes), "cudaMalloc(workspace)",
                                __FILE__, __LINE__);
      !s.ok()) {
    cublasLtDestroy(handle);
    return s;
  }
  return GemmS8(handle, workspace);
}

GemmS8::GemmS8(GemmS8&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      workspace_(std::exchange(other.workspace_, nullptr)) {}

GemmS8::~GemmS8() {
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

absl::Status GemmS8::Run(const GemmS8Shape& s, const int8_t* a, const int8_t* b, int32_t* c,
                         cudaStream_t stream) {
  if (absl::Status st = CheckGemmS8(s, a, b, c); !st.ok()) return st;
  if (s.k > MaxExactK(8, 8)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k: at most ", MaxExactK(8, 8), " terms fit one int32 sum of int8 products, got ", s.k));
  }
  // Column-major, as cuBLASLt sees it: C^T (n x m, ld n) = op(B^T stored k x n) * (A^T stored
  // k x m), with op the transpose: the TN arrangement, both operands K-major.
  Descriptors d;
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32I, CUDA_R_32I));
  const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA,
                                                               &transpose, sizeof(transpose)));
  MUPPET_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof(none)));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_8I, s.k, s.n, s.k));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_8I, s.k, s.m, s.k));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d.c, CUDA_R_32I, s.n, s.m, s.n));
  const int32_t alpha = 1, beta = 0;
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle_, d.op, &alpha, b, d.a, a, d.b, &beta, c, d.c,
                                               c, d.c, /*algo=*/nullptr, workspace_,
                                               kWorkspaceBytes, stream));
  return absl::OkStatus();
}

}  // namespace muppet::cuda
