// An FP32 convolution's passes through cuDNN, channels-last: forward, backward-data,
// backward-weights and the bias's, in exact FP32 or on TF32 tensor cores (float_math.h). The
// tensors are those of kernels/common/conv_geometry.h: x N x H x W x C, y N x OH x OW x O,
// weights O x KH x KW x C, all device memory.
#ifndef MUPPET_KERNELS_CUDA_CUDNN_CONV_H_
#define MUPPET_KERNELS_CUDA_CUDNN_CONV_H_

#include <cudnn.h>

#include "absl/status/statusor.h"
#include "kernels/common/conv_geometry.h"
#include "kernels/cuda/cudnn.h"
#include "kernels/cuda/float_math.h"

namespace muppet::cuda {

// One layer's convolution at one batch size. Calls enqueue on the handle's stream and are
// asynchronous; not thread-safe.
class CudnnConv {
 public:
  // Plans `g`'s passes in `math`: its descriptors and, per pass, the first algorithm cuDNN's
  // heuristics rank that computes in that math and is deterministic (the first in that math if
  // none is). INVALID_ARGUMENT naming the dimension cuDNN cannot take or an empty output; INTERNAL
  // naming the cuDNN call that failed, or when no algorithm computes in `math`. `cudnn` must
  // outlive the result.
  static absl::StatusOr<CudnnConv> Create(Cudnn& cudnn, const kernels::ConvGeometry& g,
                                          FloatMath math);

  // y = conv(x, w), then y += bias (O floats) per output channel when bias is not null.
  absl::Status Forward(const float* x, const float* w, const float* bias, float* y);
  // dx = conv^T(dy, w), or dx += it when `accumulate` (a shortcut's gradient already there).
  absl::Status BackwardData(const float* w, const float* dy, bool accumulate, float* dx);
  // dw = dLoss/dw from the forward's input x and dy.
  absl::Status BackwardWeights(const float* x, const float* dy, float* dw);
  // db = the sum of dy over every pixel, per output channel.
  absl::Status BackwardBias(const float* dy, float* db);

  // Whether each pass's algorithm is deterministic (run to run, bit for bit).
  bool deterministic() const { return deterministic_; }
  const kernels::ConvGeometry& geometry() const { return g_; }

 private:
  CudnnConv(Cudnn& cudnn, const kernels::ConvGeometry& g) : cudnn_(&cudnn), g_(g) {}

  Cudnn* cudnn_;
  kernels::ConvGeometry g_;
  TensorDescriptor x_, y_, bias_;
  FilterDescriptor w_;
  ConvolutionDescriptor conv_;
  cudnnConvolutionFwdAlgo_t forward_{};
  cudnnConvolutionBwdDataAlgo_t backward_data_{};
  cudnnConvolutionBwdFilterAlgo_t backward_weights_{};
  size_t forward_bytes_ = 0, backward_data_bytes_ = 0, backward_weights_bytes_ = 0;
  bool deterministic_ = true;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_CUDNN_CONV_H_
