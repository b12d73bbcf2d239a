#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cublaslt.h"

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

absl::StatusOr<CublasLt> CublasLt::Create() {
  cublasLtHandle_t handle = nullptr;
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&handle));
  void* workspace = nullptr;
  if (absl::Status s = ToStatus(cudaMalloc(&workspace, kWorkspaceBytes), "cudaMalloc(workspace)",
                                __FILE__, __LINE__);
      !s.ok()) {
    cublasLtDestroy(handle);
    return s;
  }
  return CublasLt(handle, workspace);
}

CublasLt::CublasLt(CublasLt&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      workspace_(std::exchange(other.workspace_, nullptr)) {}

CublasLt::~CublasLt() {
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

absl::Status CublasLt::MatmulTN(const CublasLtTypes& t, const GemmShape& s, const void* alpha,
                                const void* beta, const void* a, int64_t lda, const void* b,
                                int64_t ldb, void* c, cudaStream_t stream) {
  Descriptors d;
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&d.op, t.compute, t.scale));
  const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA,
                                                               &transpose, sizeof(transpose)));
  MUPPET_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof(none)));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d.a, t.operands, s.k, s.n, ldb));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d.b, t.operands, s.k, s.m, lda));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d.c, t.output, s.n, s.m, s.n));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle_, d.op, alpha, b, d.a, a, d.b, beta, c, d.c,
                                               c, d.c, /*algo=*/nullptr, workspace_,
                                               kWorkspaceBytes, stream));
  return absl::OkStatus();
}

}  // namespace muppet::cuda
