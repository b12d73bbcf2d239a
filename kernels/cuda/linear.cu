#include "absl/strings/str_cat.h"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/linear.h"

namespace muppet::cuda {
namespace {

// ---- Kernels ----

__global__ void AddBiasKernel(const float* bias, int64_t rows, int64_t cols, float* y) {
  GridStride(rows * cols, [&](int64_t i) { y[i] = __fadd_rn(y[i], bias[i % cols]); });
}

__global__ void ColumnSumsKernel(const float* x, int64_t rows, int64_t cols, float* sums) {
  WarpLineSums(x, cols, rows, 1, cols,
               [&](int64_t c, double sum) { sums[c] = static_cast<float>(sum); });
}

}  // namespace

// ---- Launchers ----

absl::StatusOr<LinearF32> LinearF32::Create(FloatMath math) {
  absl::StatusOr<CublasLt> lt = CublasLt::Create();
  if (!lt.ok()) return lt.status();
  return LinearF32(*std::move(lt), math);
}

absl::Status LinearF32::CheckShape(const LinearShape& s) {
  for (const auto& [name, value] : {std::pair{"m", s.m}, {"k", s.k}, {"n", s.n}}) {
    if (value < 1) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": must be at least 1, got ", value));
    }
  }
  return absl::OkStatus();
}

absl::Status LinearF32::Gemm(const GemmShape& shape, const GemmOperand& a, const GemmOperand& b,
                             float* c, cudaStream_t stream) {
  const float one = 1, zero = 0;
  return lt_.Matmul(
      {.operands = CUDA_R_32F,
       .output = CUDA_R_32F,
       .compute = math_ == FloatMath::kExact ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32,
       .scale = CUDA_R_32F},
      shape, &one, &zero, a, b, c, stream);
}

absl::Status LinearF32::Forward(const LinearShape& s, const float* x, const float* w,
                                const float* bias, float* y, cudaStream_t stream) {
  if (absl::Status st = CheckShape(s); !st.ok()) return st;
  if (absl::Status st = Gemm({.m = s.m, .n = s.n, .k = s.k}, {.data = x, .ld = s.k},
                             {.data = w, .ld = s.k, .transposed = true}, y, stream);
      !st.ok()) {
    return st;
  }
  if (bias == nullptr) return absl::OkStatus();
  return LaunchGridStride(AddBiasKernel, s.m * s.n, stream, bias, s.m, s.n, y);
}

absl::Status LinearF32::BackwardData(const LinearShape& s, const float* dy, const float* w,
                                     float* dx, cudaStream_t stream) {
  if (absl::Status st = CheckShape(s); !st.ok()) return st;
  return Gemm({.m = s.m, .n = s.k, .k = s.n}, {.data = dy, .ld = s.n}, {.data = w, .ld = s.k}, dx,
              stream);
}

absl::Status LinearF32::BackwardWeights(const LinearShape& s, const float* x, const float* dy,
                                        float* dw, float* db, cudaStream_t stream) {
  if (absl::Status st = CheckShape(s); !st.ok()) return st;
  if (absl::Status st =
          Gemm({.m = s.n, .n = s.k, .k = s.m}, {.data = dy, .ld = s.n, .transposed = true},
               {.data = x, .ld = s.k}, dw, stream);
      !st.ok()) {
    return st;
  }
  if (db == nullptr) return absl::OkStatus();
  return LaunchGridStride(ColumnSumsKernel, s.n * 32, stream, dy, s.m, s.n, db);
}

}  // namespace muppet::cuda
