#include <utility>

#include "kernels/cuda/gemm_f16.h"

namespace muppet::cuda {

absl::StatusOr<GemmF16> GemmF16::Create() {
  absl::StatusOr<CublasLt> lt = CublasLt::Create();
  if (!lt.ok()) return lt.status();
  return GemmF16(*std::move(lt));
}

absl::Status GemmF16::Run(const GemmShape& s, const __half* a, const __half* b, float* c,
                          cudaStream_t stream) {
  if (absl::Status st = CheckTensorCoreGemm(s, a, b, c); !st.ok()) return st;
  const float alpha = 1, beta = 0;
  return lt_.MatmulTN({.operands = CUDA_R_16F,
                       .output = CUDA_R_32F,
                       .compute = CUBLAS_COMPUTE_32F,
                       .scale = CUDA_R_32F},
                      s, &alpha, &beta, a, s.k, b, s.k, c, stream);
}

}  // namespace muppet::cuda
