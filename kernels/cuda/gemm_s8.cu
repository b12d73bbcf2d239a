#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/gemm_s8.h"

namespace muppet::cuda {

absl::StatusOr<GemmS8> GemmS8::Create() {
  absl::StatusOr<CublasLt> lt = CublasLt::Create();
  if (!lt.ok()) return lt.status();
  return GemmS8(*std::move(lt));
}

absl::Status GemmS8::Run(const GemmShape& s, const int8_t* a, const int8_t* b, int32_t* c,
                         cudaStream_t stream) {
  return Run(s, a, s.k, b, s.k, c, stream);
}

absl::Status GemmS8::Run(const GemmShape& s, const int8_t* a, int64_t lda, const int8_t* b,
                         int64_t ldb, int32_t* c, cudaStream_t stream) {
  if (absl::Status st = CheckTensorCoreGemm(s, a, b, c); !st.ok()) return st;
  for (const auto& [name, ld] : {std::pair{"lda", lda}, {"ldb", ldb}}) {
    if (ld < s.k || ld % 4 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": must be a multiple of 4 and at least k ", s.k, ", got ", ld));
    }
  }
  if (s.k > MaxExactK(8, 8)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k: at most ", MaxExactK(8, 8), " terms fit one int32 sum of int8 products, got ", s.k));
  }
  const int32_t alpha = 1, beta = 0;
  return lt_.MatmulTN({.operands = CUDA_R_8I,
                       .output = CUDA_R_32I,
                       .compute = CUBLAS_COMPUTE_32I,
                       .scale = CUDA_R_32I},
                      s, &alpha, &beta, a, lda, b, ldb, c, stream);
}

}  // namespace muppet::cuda
