#include "absl/strings/str_cat.h"
#include "kernels/cuda/batch_norm.h"

namespace muppet::cuda {

absl::StatusOr<CudnnBatchNorm> CudnnBatchNorm::Create(Cudnn& cudnn, int64_t n, int64_t c, int64_t h,
                                                      int64_t w, double momentum, double epsilon) {
  if (!(momentum >= 0 && momentum <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("momentum: must lie in [0, 1], got ", momentum));
  }
  if (!(epsilon >= CUDNN_BN_MIN_EPSILON)) {
    return absl::InvalidArgumentError(
        absl::StrCat("epsilon: cuDNN needs at least ", CUDNN_BN_MIN_EPSILON, ", got ", epsilon));
  }
  CudnnBatchNorm bn(cudnn, momentum, epsilon);
  absl::StatusOr<TensorDescriptor> x = NhwcTensor(n, c, h, w);
  if (!x.ok()) return x.status();
  absl::StatusOr<TensorDescriptor> channels = ChannelTensor(c);
  if (!channels.ok()) return channels.status();
  bn.x_ = *std::move(x);
  bn.channels_ = *std::move(channels);
  return bn;
}

absl::Status CudnnBatchNorm::ForwardTraining(const float* x, const float* gamma, const float* beta,
                                             float* y, float* running_mean, float* running_var,
                                             float* saved_mean, float* saved_inv_std) {
  const float one = 1, zero = 0;
  MUPPET_CUDNN_CALL(cudnnBatchNormalizationForwardTraining, cudnn_->handle(),
                    CUDNN_BATCHNORM_SPATIAL, &one, &zero, x_.get(), x, x_.get(), y, channels_.get(),
                    gamma, beta, momentum_, running_mean, running_var, epsilon_, saved_mean,
                    saved_inv_std);
  return absl::OkStatus();
}

absl::Status CudnnBatchNorm::ForwardInference(const float* x, const float* gamma, const float* beta,
                                              const float* running_mean, const float* running_var,
                                              float* y) {
  const float one = 1, zero = 0;
  MUPPET_CUDNN_CALL(cudnnBatchNormalizationForwardInference, cudnn_->handle(),
                    CUDNN_BATCHNORM_SPATIAL, &one, &zero, x_.get(), x, x_.get(), y, channels_.get(),
                    gamma, beta, running_mean, running_var, epsilon_);
  return absl::OkStatus();
}

absl::Status CudnnBatchNorm::Backward(const float* x, const float* dy, const float* gamma,
                                      const float* saved_mean, const float* saved_inv_std,
                                      float* dx, float* dgamma, float* dbeta) {
  const float one = 1, zero = 0;
  MUPPET_CUDNN_CALL(cudnnBatchNormalizationBackward, cudnn_->handle(), CUDNN_BATCHNORM_SPATIAL,
                    &one, &zero, &one, &zero, x_.get(), x, x_.get(), dy, x_.get(), dx,
                    channels_.get(), gamma, dgamma, dbeta, epsilon_, saved_mean, saved_inv_std);
  return absl::OkStatus();
}

}  // namespace muppet::cuda
