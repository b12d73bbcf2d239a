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
  return Matmul(t, s, alpha, beta, {.data = a, .ld = lda},
                {.data = b, .ld = ldb, .transposed = true}, c, stream);
}

// cuBLASLt is column-major, and a row-major matrix read column-major is its transpose. So C^T
// (n x m, which is C read column-major) = op(B)^T op(A)^T: B's storage is cuBLASLt's first
// operand and A's its second. An operand stored as op(X) reads column-major as op(X)^T, which is
// what the product needs (no transpose); one stored transposed reads as op(X) (transpose).
absl::Status CublasLt::Matmul(const CublasLtTypes& t, const GemmShape& s, const void* alpha,
                              const void* beta, const GemmOperand& a, const GemmOperand& b, void* c,
                              cudaStream_t stream) {
  Descriptors d;
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&d.op, t.compute, t.scale));
  const cublasOperation_t op_first = b.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = a.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA,
                                                               &op_first, sizeof(op_first)));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB,
                                                               &op_second, sizeof(op_second)));
  // Column-major (rows, columns) of each storage: B is k x n or n x k row-major, A m x k or k x m.
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(
      &d.a, t.operands, b.transposed ? s.k : s.n, b.transposed ? s.n : s.k, b.ld));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(
      &d.b, t.operands, a.transposed ? s.m : s.k, a.transposed ? s.k : s.m, a.ld));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d.c, t.output, s.n, s.m, s.n));
  MUPPET_CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle_, d.op, alpha, b.data, d.a, a.data, d.b, beta,
                                               c, d.c, c, d.c, /*algo=*/nullptr, workspace_,
                                               kWorkspaceBytes, stream));
  return absl::OkStatus();
}

}  // namespace muppet::cuda
