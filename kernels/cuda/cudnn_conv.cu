#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cudnn_conv.h"

namespace muppet::cuda {
namespace {

// The math type the descriptor asks for: FMA only for exact FP32; cuDNN's default, which may
// use TF32 tensor cores for float data, otherwise.
cudnnMathType_t MathType(FloatMath math) {
  return math == FloatMath::kExact ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

// The first of cuDNN's ranked algorithms that ran, may compute in `math` and is deterministic,
// else the first that ran and may compute in `math`; INTERNAL naming the pass when none does.
template <typename Perf>
absl::StatusOr<Perf> Choose(const std::vector<Perf>& ranked, int found, FloatMath math,
                            const char* pass) {
  const Perf* chosen = nullptr;
  for (int i = 0; i < found; ++i) {
    const Perf& p = ranked[i];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    // The descriptor restricts exact FP32 to FMA kernels; skip any ranked as tensor-core ones.
    if (math == FloatMath::kExact && (p.mathType == CUDNN_TENSOR_OP_MATH ||
                                      p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) {
      continue;
    }
    if (p.determinism == CUDNN_DETERMINISTIC) return p;
    if (chosen == nullptr) chosen = &p;
  }
  if (chosen == nullptr) {
    return absl::InternalError(absl::StrCat("cuDNN offers no ", pass, " algorithm in ",
                                            FloatMathName(math), " for this convolution"));
  }
  return *chosen;
}

}  // namespace

absl::StatusOr<CudnnConv> CudnnConv::Create(Cudnn& cudnn, const kernels::ConvGeometry& g,
                                            FloatMath math) {
  for (const auto& [name, value] :
       {std::pair{"kernel", g.kernel}, {"stride", g.stride}, {"o", g.o}}) {
    if (absl::Status s = CheckCudnnDimension(name, value); !s.ok()) return s;
  }
  if (g.padding < 0 || g.out_h() < 1 || g.out_w() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "convolution of ", g.h, "x", g.w, " images by a ", g.kernel, "x", g.kernel,
        " kernel with padding ", g.padding, " and stride ", g.stride, " has no output pixels"));
  }
  CudnnConv conv(cudnn, g);
  absl::StatusOr<TensorDescriptor> x = NhwcTensor(g.n, g.c, g.h, g.w);
  if (!x.ok()) return x.status();
  absl::StatusOr<TensorDescriptor> y = NhwcTensor(g.n, g.o, g.out_h(), g.out_w());
  if (!y.ok()) return y.status();
  absl::StatusOr<TensorDescriptor> bias = ChannelTensor(g.o);
  if (!bias.ok()) return bias.status();
  conv.x_ = *std::move(x);
  conv.y_ = *std::move(y);
  conv.bias_ = *std::move(bias);

  cudnnFilterDescriptor_t w = nullptr;
  MUPPET_CUDNN_CALL(cudnnCreateFilterDescriptor, &w);
  conv.w_ = FilterDescriptor(w);
  const int o = static_cast<int>(g.o), c = static_cast<int>(g.c), k = static_cast<int>(g.kernel);
  MUPPET_CUDNN_CALL(cudnnSetFilter4dDescriptor, w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, o, c, k, k);
  cudnnConvolutionDescriptor_t desc = nullptr;
  MUPPET_CUDNN_CALL(cudnnCreateConvolutionDescriptor, &desc);
  conv.conv_ = ConvolutionDescriptor(desc);
  const int pad = static_cast<int>(g.padding), stride = static_cast<int>(g.stride);
  MUPPET_CUDNN_CALL(cudnnSetConvolution2dDescriptor, desc, pad, pad, stride, stride, 1, 1,
                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
  MUPPET_CUDNN_CALL(cudnnSetConvolutionMathType, desc, MathType(math));

  const cudnnHandle_t h = cudnn.handle();
  int found = 0;
  {
    std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    MUPPET_CUDNN_CALL(cudnnGetConvolutionForwardAlgorithm_v7, h, conv.x_.get(), w, desc,
                      conv.y_.get(), static_cast<int>(ranked.size()), &found, ranked.data());
    absl::StatusOr<cudnnConvolutionFwdAlgoPerf_t> p = Choose(ranked, found, math, "forward");
    if (!p.ok()) return p.status();
    conv.forward_ = p->algo;
    conv.deterministic_ &= p->determinism == CUDNN_DETERMINISTIC;
    MUPPET_CUDNN_CALL(cudnnGetConvolutionForwardWorkspaceSize, h, conv.x_.get(), w, desc,
                      conv.y_.get(), conv.forward_, &conv.forward_bytes_);
  }
  {
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> ranked(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    MUPPET_CUDNN_CALL(cudnnGetConvolutionBackwardDataAlgorithm_v7, h, w, conv.y_.get(), desc,
                      conv.x_.get(), static_cast<int>(ranked.size()), &found, ranked.data());
    absl::StatusOr<cudnnConvolutionBwdDataAlgoPerf_t> p =
        Choose(ranked, found, math, "backward-data");
    if (!p.ok()) return p.status();
    conv.backward_data_ = p->algo;
    conv.deterministic_ &= p->determinism == CUDNN_DETERMINISTIC;
    MUPPET_CUDNN_CALL(cudnnGetConvolutionBackwardDataWorkspaceSize, h, w, conv.y_.get(), desc,
                      conv.x_.get(), conv.backward_data_, &conv.backward_data_bytes_);
  }
  {
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> ranked(
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    MUPPET_CUDNN_CALL(cudnnGetConvolutionBackwardFilterAlgorithm_v7, h, conv.x_.get(),
                      conv.y_.get(), desc, w, static_cast<int>(ranked.size()), &found,
                      ranked.data());
    absl::StatusOr<cudnnConvolutionBwdFilterAlgoPerf_t> p =
        Choose(ranked, found, math, "backward-weights");
    if (!p.ok()) return p.status();
    conv.backward_weights_ = p->algo;
    conv.deterministic_ &= p->determinism == CUDNN_DETERMINISTIC;
    MUPPET_CUDNN_CALL(cudnnGetConvolutionBackwardFilterWorkspaceSize, h, conv.x_.get(),
                      conv.y_.get(), desc, w, conv.backward_weights_,
                      &conv.backward_weights_bytes_);
  }
  return conv;
}

absl::Status CudnnConv::Forward(const float* x, const float* w, const float* bias, float* y) {
  absl::StatusOr<char*> scratch = cudnn_->Scratch(forward_bytes_);
  if (!scratch.ok()) return scratch.status();
  const float one = 1, zero = 0;
  MUPPET_CUDNN_CALL(cudnnConvolutionForward, cudnn_->handle(), &one, x_.get(), x, w_.get(), w,
                    conv_.get(), forward_, *scratch, forward_bytes_, &zero, y_.get(), y);
  if (bias == nullptr) return absl::OkStatus();
  MUPPET_CUDNN_CALL(cudnnAddTensor, cudnn_->handle(), &one, bias_.get(), bias, &one, y_.get(), y);
  return absl::OkStatus();
}

absl::Status CudnnConv::BackwardData(const float* w, const float* dy, bool accumulate, float* dx) {
  absl::StatusOr<char*> scratch = cudnn_->Scratch(backward_data_bytes_);
  if (!scratch.ok()) return scratch.status();
  const float one = 1, beta = accumulate ? 1.0f : 0.0f;
  MUPPET_CUDNN_CALL(cudnnConvolutionBackwardData, cudnn_->handle(), &one, w_.get(), w, y_.get(), dy,
                    conv_.get(), backward_data_, *scratch, backward_data_bytes_, &beta, x_.get(),
                    dx);
  return absl::OkStatus();
}

absl::Status CudnnConv::BackwardWeights(const float* x, const float* dy, float* dw) {
  absl::StatusOr<char*> scratch = cudnn_->Scratch(backward_weights_bytes_);
  if (!scratch.ok()) return scratch.status();
  const float one = 1, zero = 0;
  MUPPET_CUDNN_CALL(cudnnConvolutionBackwardFilter, cudnn_->handle(), &one, x_.get(), x, y_.get(),
                    dy, conv_.get(), backward_weights_, *scratch, backward_weights_bytes_, &zero,
                    w_.get(), dw);
  return absl::OkStatus();
}

absl::Status CudnnConv::BackwardBias(const float* dy, float* db) {
  const float one = 1, zero = 0;
  MUPPET_CUDNN_CALL(cudnnConvolutionBackwardBias, cudnn_->handle(), &one, y_.get(), dy, &zero,
                    bias_.get(), db);
  return absl::OkStatus();
}

}  // namespace muppet::cuda
