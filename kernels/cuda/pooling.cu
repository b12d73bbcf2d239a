#include "absl/strings/str_cat.h"
#include "kernels/cuda/pooling.h"

namespace muppet::cuda {

absl::StatusOr<CudnnPool> CudnnPool::Create(Cudnn& cudnn, PoolKind kind, const PoolGeometry& g) {
  for (const auto& [name, value] :
       {std::pair{"window_h", g.window_h}, {"window_w", g.window_w}, {"stride", g.stride}}) {
    if (absl::Status s = CheckCudnnDimension(name, value); !s.ok()) return s;
  }
  if (g.padding < 0 || g.padding >= g.window_h || g.padding >= g.window_w) {
    return absl::InvalidArgumentError(absl::StrCat("padding: must lie in [0, window), got ",
                                                   g.padding, " for a ", g.window_h, "x",
                                                   g.window_w, " window"));
  }
  if (g.out_h() < 1 || g.out_w() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("pooling ", g.h, "x", g.w, " images by a ",
                                                   g.window_h, "x", g.window_w,
                                                   " window has no output pixels"));
  }
  CudnnPool pool(cudnn, g);
  absl::StatusOr<TensorDescriptor> x = NhwcTensor(g.n, g.c, g.h, g.w);
  if (!x.ok()) return x.status();
  absl::StatusOr<TensorDescriptor> y = NhwcTensor(g.n, g.c, g.out_h(), g.out_w());
  if (!y.ok()) return y.status();
  pool.x_ = *std::move(x);
  pool.y_ = *std::move(y);
  cudnnPoolingDescriptor_t desc = nullptr;
  MUPPET_CUDNN_CALL(cudnnCreatePoolingDescriptor, &desc);
  pool.pool_ = PoolingDescriptor(desc);
  const cudnnPoolingMode_t mode =
      kind == PoolKind::kMax ? CUDNN_POOLING_MAX : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING;
  MUPPET_CUDNN_CALL(cudnnSetPooling2dDescriptor, desc, mode, CUDNN_PROPAGATE_NAN,
                    static_cast<int>(g.window_h), static_cast<int>(g.window_w),
                    static_cast<int>(g.padding), static_cast<int>(g.padding),
                    static_cast<int>(g.stride), static_cast<int>(g.stride));
  return pool;
}

absl::Status CudnnPool::Forward(const float* x, float* y) {
  const float one = 1, zero = 0;
  MUPPET_CUDNN_CALL(cudnnPoolingForward, cudnn_->handle(), pool_.get(), &one, x_.get(), x, &zero,
                    y_.get(), y);
  return absl::OkStatus();
}

absl::Status CudnnPool::Backward(const float* x, const float* y, const float* dy, float* dx) {
  const float one = 1, zero = 0;
  MUPPET_CUDNN_CALL(cudnnPoolingBackward, cudnn_->handle(), pool_.get(), &one, y_.get(), y,
                    y_.get(), dy, x_.get(), x, &zero, x_.get(), dx);
  return absl::OkStatus();
}

}  // namespace muppet::cuda
