#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cublaslt.h"
#include "kernels/cuda/lazy_library.h"

namespace muppet::cuda {
namespace {

// cuBLASLt's recommended workspace for Hopper.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

// libcublasLt.so.13, opened at the first cuBLASLt call.
LazyLibrary& CublasLtLibrary() {
  static LazyLibrary* const library = new LazyLibrary("libcublasLt.so.13");
  return *library;
}

absl::Status FromCublas(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const auto name = MUPPET_LAZY_FUNCTION(CublasLtLibrary(), cublasLtGetStatusName);
  const auto text = MUPPET_LAZY_FUNCTION(CublasLtLibrary(), cublasLtGetStatusString);
  return absl::InternalError(
      absl::StrCat(call, " failed: ", name != nullptr ? name(status) : "(no name)", " (",
                   text != nullptr ? text(status) : "no message", ")"));
}

// Calls cuBLASLt's `fn` with the arguments and returns its error as an absl::Status:
// FAILED_PRECONDITION when cuBLASLt cannot be loaded, INTERNAL for a cuBLASLt error.
#define MUPPET_CUBLASLT_CALL(fn, ...)                                                \
  do {                                                                               \
    const auto _fn = MUPPET_LAZY_FUNCTION(CublasLtLibrary(), fn);                    \
    if (_fn == nullptr) return CublasLtLibrary().Missing(#fn);                       \
    if (absl::Status _st = FromCublas(_fn(__VA_ARGS__), #fn); !_st.ok()) return _st; \
  } while (0)

// Calls `fn` where cuBLASLt is loaded (its objects exist only then), ignoring its status: for
// destructors.
#define MUPPET_CUBLASLT_RELEASE(fn, object)                                             \
  do {                                                                                  \
    if (const auto _fn = MUPPET_LAZY_FUNCTION(CublasLtLibrary(), fn); _fn != nullptr) { \
      _fn(object);                                                                      \
    }                                                                                   \
  } while (0)

// The descriptors of one call, destroyed with it.
struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~Descriptors() {
    for (cublasLtMatrixLayout_t layout : {c, b, a}) {
      if (layout != nullptr) MUPPET_CUBLASLT_RELEASE(cublasLtMatrixLayoutDestroy, layout);
    }
    if (op != nullptr) MUPPET_CUBLASLT_RELEASE(cublasLtMatmulDescDestroy, op);
  }
};

}  // namespace

absl::StatusOr<CublasLt> CublasLt::Create() {
  cublasLtHandle_t handle = nullptr;
  MUPPET_CUBLASLT_CALL(cublasLtCreate, &handle);
  void* workspace = nullptr;
  if (absl::Status s = ToStatus(cudaMalloc(&workspace, kWorkspaceBytes), "cudaMalloc(workspace)",
                                __FILE__, __LINE__);
      !s.ok()) {
    MUPPET_CUBLASLT_RELEASE(cublasLtDestroy, handle);
    return s;
  }
  return CublasLt(handle, workspace);
}

CublasLt::CublasLt(CublasLt&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      workspace_(std::exchange(other.workspace_, nullptr)) {}

CublasLt::~CublasLt() {
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) MUPPET_CUBLASLT_RELEASE(cublasLtDestroy, handle_);
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
  MUPPET_CUBLASLT_CALL(cublasLtMatmulDescCreate, &d.op, t.compute, t.scale);
  const cublasOperation_t op_first = b.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = a.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  MUPPET_CUBLASLT_CALL(cublasLtMatmulDescSetAttribute, d.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first,
                       sizeof(op_first));
  MUPPET_CUBLASLT_CALL(cublasLtMatmulDescSetAttribute, d.op, CUBLASLT_MATMUL_DESC_TRANSB,
                       &op_second, sizeof(op_second));
  // Column-major (rows, columns) of each storage: B is k x n or n x k row-major, A m x k or k x m.
  MUPPET_CUBLASLT_CALL(cublasLtMatrixLayoutCreate, &d.a, t.operands, b.transposed ? s.k : s.n,
                       b.transposed ? s.n : s.k, b.ld);
  MUPPET_CUBLASLT_CALL(cublasLtMatrixLayoutCreate, &d.b, t.operands, a.transposed ? s.m : s.k,
                       a.transposed ? s.k : s.m, a.ld);
  MUPPET_CUBLASLT_CALL(cublasLtMatrixLayoutCreate, &d.c, t.output, s.n, s.m, s.n);
  MUPPET_CUBLASLT_CALL(cublasLtMatmul, handle_, d.op, alpha, b.data, d.a, a.data, d.b, beta, c, d.c,
                       c, d.c, /*algo=*/nullptr, workspace_, kWorkspaceBytes, stream);
  return absl::OkStatus();
}

}  // namespace muppet::cuda
