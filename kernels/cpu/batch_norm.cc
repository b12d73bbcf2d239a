#include "kernels/cpu/batch_norm.h"

#include "kernels/cpu/batch_norm_impl.h"

namespace muppet::kernels {
namespace internal {
MUPPET_BATCH_NORM_DEFINE(Scalar)
}  // namespace internal

void ChannelSums(const ChannelRows& x, int64_t begin, int64_t end, double* sum, double* sum_sq,
                 Isa isa) {
  ChannelSums(x, begin, end, sum, sum_sq, ChannelCodeExtremes{}, isa);
}

void ChannelSums(const ChannelRows& x, int64_t begin, int64_t end, double* sum, double* sum_sq,
                 const ChannelCodeExtremes& extremes, Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return internal::ChannelSumsAvx512(x, begin, end, sum, sum_sq, extremes);
    case Isa::kAvx2:
      return internal::ChannelSumsAvx2(x, begin, end, sum, sum_sq, extremes);
    case Isa::kScalar:
      return internal::ChannelSumsScalar(x, begin, end, sum, sum_sq, extremes);
  }
}

void ChannelAffine(const ChannelRows& x, int64_t begin, int64_t end, const float* scale,
                   const float* shift, float floor, float* y, const ChannelAddend& addend,
                   Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return internal::ChannelAffineAvx512(x, begin, end, scale, shift, floor, y, addend);
    case Isa::kAvx2:
      return internal::ChannelAffineAvx2(x, begin, end, scale, shift, floor, y, addend);
    case Isa::kScalar:
      return internal::ChannelAffineScalar(x, begin, end, scale, shift, floor, y, addend);
  }
}

void ChannelGradSums(const ChannelRows& x, const ChannelGrad& grad, int64_t begin, int64_t end,
                     double* sum_g, double* sum_g_xhat, Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return internal::ChannelGradSumsAvx512(x, grad, begin, end, sum_g, sum_g_xhat);
    case Isa::kAvx2:
      return internal::ChannelGradSumsAvx2(x, grad, begin, end, sum_g, sum_g_xhat);
    case Isa::kScalar:
      return internal::ChannelGradSumsScalar(x, grad, begin, end, sum_g, sum_g_xhat);
  }
}

void ChannelInputGrad(const ChannelRows& x, const ChannelGrad& grad, int64_t begin, int64_t end,
                      const float* scale, const float* mean_g, const float* mean_g_xhat, float* dx,
                      Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return internal::ChannelInputGradAvx512(x, grad, begin, end, scale, mean_g, mean_g_xhat, dx);
    case Isa::kAvx2:
      return internal::ChannelInputGradAvx2(x, grad, begin, end, scale, mean_g, mean_g_xhat, dx);
    case Isa::kScalar:
      return internal::ChannelInputGradScalar(x, grad, begin, end, scale, mean_g, mean_g_xhat, dx);
  }
}

}  // namespace muppet::kernels
