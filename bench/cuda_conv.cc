// The 8-bit convolution on the tensor cores (kernels/cuda/conv_s8.h) against cuDNN's FP32
// convolution, exact FP32 (CUDNN_FMA_MATH) and TF32 tensor cores (CUDNN_DEFAULT_MATH, PyTorch's
// default for convolutions), on resnet18's convolutions at batch 256 (ImageNet layout, 224 x 224
// input), forward, backward-data and backward-weights, in one run. Validation first, at batch 2:
// every pass of the 8-bit convolution bit for bit against the CPU's (kernels/cpu), and cuDNN's
// forward in both modes against the CPU's on the same grid values (within FP32 rounding). Then
// each is timed (best of 10, CUDA events; cuDNN with its first heuristic algorithm and the
// workspace that needs), the 8-bit time including its im2col and transposes but not the
// quantisation of its operands. One JSON line per layer and pass, then per pass the aggregate
// over resnet18's 20 convolutions.
//   bazel run -c opt //bench:cuda_conv
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/cuda_harness.h"
#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/fixed_point_conv.h"
#include "kernels/cuda/conv_s8.h"
#include "kernels/cuda/device_buffer.h"

namespace muppet::bench {
namespace {

using kernels::ConvGeometry;

struct Layer {
  std::string name;
  ConvGeometry g;  // n is set per use.
  int count;       // resnet18's convolutions of this shape.
};

std::vector<Layer> Resnet18() {
  const auto conv = [](int64_t hw, int64_t c, int64_t o, int64_t kernel, int64_t stride) {
    return ConvGeometry{.h = hw,
                        .w = hw,
                        .c = c,
                        .o = o,
                        .kernel = kernel,
                        .stride = stride,
                        .padding = kernel / 2};
  };
  return {
      {"conv1", conv(224, 3, 64, 7, 2), 1},          {"layer1", conv(56, 64, 64, 3, 1), 4},
      {"layer2.first", conv(56, 64, 128, 3, 2), 1},  {"layer2.down", conv(56, 64, 128, 1, 2), 1},
      {"layer2", conv(28, 128, 128, 3, 1), 3},       {"layer3.first", conv(28, 128, 256, 3, 2), 1},
      {"layer3.down", conv(28, 128, 256, 1, 2), 1},  {"layer3", conv(14, 256, 256, 3, 1), 3},
      {"layer4.first", conv(14, 256, 512, 3, 2), 1}, {"layer4.down", conv(14, 256, 512, 1, 2), 1},
      {"layer4", conv(7, 512, 512, 3, 1), 3},
  };
}

void CheckCudnn(cudnnStatus_t s, const std::string& what) {
  if (s != CUDNN_STATUS_SUCCESS) Fail(absl::StrCat(what, ": ", cudnnGetErrorString(s)));
}

// One layer's cuDNN convolution in FP32, channels-last, in one math mode.
class CudnnConv {
 public:
  CudnnConv(cudnnHandle_t handle, const ConvGeometry& g, cudnnMathType_t math) : handle_(handle) {
    CheckCudnn(cudnnCreateTensorDescriptor(&x_), "x descriptor");
    CheckCudnn(cudnnCreateTensorDescriptor(&y_), "y descriptor");
    CheckCudnn(cudnnCreateFilterDescriptor(&w_), "w descriptor");
    CheckCudnn(cudnnCreateConvolutionDescriptor(&conv_), "conv descriptor");
    const int n = static_cast<int>(g.n);
    CheckCudnn(
        cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, n, g.c, g.h, g.w), "x");
    CheckCudnn(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, n, g.o,
                                          g.out_h(), g.out_w()),
               "y");
    CheckCudnn(cudnnSetFilter4dDescriptor(w_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, g.o, g.c,
                                          g.kernel, g.kernel),
               "w");
    CheckCudnn(cudnnSetConvolution2dDescriptor(conv_, g.padding, g.padding, g.stride, g.stride, 1,
                                               1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
               "conv");
    CheckCudnn(cudnnSetConvolutionMathType(conv_, math), "math type");
    int found = 0;
    CheckCudnn(
        cudnnGetConvolutionForwardAlgorithm_v7(handle_, x_, w_, conv_, y_, 1, &found, &forward_),
        "forward algorithm");
    CheckCudnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, w_, y_, conv_, x_, 1, &found,
                                                           &backward_data_),
               "backward-data algorithm");
    CheckCudnn(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, x_, y_, conv_, w_, 1, &found,
                                                             &backward_weights_),
               "backward-weights algorithm");
    size_t bytes = 0, most = 0;
    CheckCudnn(
        cudnnGetConvolutionForwardWorkspaceSize(handle_, x_, w_, conv_, y_, forward_.algo, &bytes),
        "forward workspace");
    most = std::max(most, bytes);
    CheckCudnn(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, w_, y_, conv_, x_,
                                                            backward_data_.algo, &bytes),
               "backward-data workspace");
    most = std::max(most, bytes);
    CheckCudnn(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, x_, y_, conv_, w_,
                                                              backward_weights_.algo, &bytes),
               "backward-weights workspace");
    most = std::max(most, bytes);
    workspace_bytes_ = std::max<size_t>(most, 16);
    workspace_.emplace(Check(cuda::DeviceBuffer<char>::Allocate(workspace_bytes_), "workspace"));
  }
  ~CudnnConv() {
    cudnnDestroyConvolutionDescriptor(conv_);
    cudnnDestroyFilterDescriptor(w_);
    cudnnDestroyTensorDescriptor(y_);
    cudnnDestroyTensorDescriptor(x_);
  }

  void Forward(const float* x, const float* w, float* y) {
    const float one = 1, zero = 0;
    CheckCudnn(cudnnConvolutionForward(handle_, &one, x_, x, w_, w, conv_, forward_.algo,
                                       workspace_->data(), workspace_bytes_, &zero, y_, y),
               "cudnnConvolutionForward");
  }
  void BackwardData(const float* w, const float* dy, float* dx) {
    const float one = 1, zero = 0;
    CheckCudnn(
        cudnnConvolutionBackwardData(handle_, &one, w_, w, y_, dy, conv_, backward_data_.algo,
                                     workspace_->data(), workspace_bytes_, &zero, x_, dx),
        "cudnnConvolutionBackwardData");
  }
  void BackwardWeights(const float* x, const float* dy, float* dw) {
    const float one = 1, zero = 0;
    CheckCudnn(
        cudnnConvolutionBackwardFilter(handle_, &one, x_, x, y_, dy, conv_, backward_weights_.algo,
                                       workspace_->data(), workspace_bytes_, &zero, w_, dw),
        "cudnnConvolutionBackwardFilter");
  }

 private:
  cudnnHandle_t handle_;
  cudnnTensorDescriptor_t x_, y_;
  cudnnFilterDescriptor_t w_;
  cudnnConvolutionDescriptor_t conv_;
  cudnnConvolutionFwdAlgoPerf_t forward_;
  cudnnConvolutionBwdDataAlgoPerf_t backward_data_;
  cudnnConvolutionBwdFilterAlgoPerf_t backward_weights_;
  size_t workspace_bytes_ = 0;
  std::optional<cuda::DeviceBuffer<char>> workspace_;
};

std::vector<float> RandomFloats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

kernels::Quantized Codes(const std::vector<float>& x, uint64_t stream) {
  return Check(kernels::QuantizeTensor(x, 8, kernels::Rounding::kStochastic, 5, stream),
               "QuantizeTensor");
}

template <typename T>
std::vector<T> ToHost(const cuda::DeviceBuffer<T>& buffer) {
  CheckCuda(cudaDeviceSynchronize(), "a pass");
  return Check(buffer.ToHost(), "to host");
}

// The layer at batch 2: the 8-bit passes bit for bit against the CPU's, cuDNN's forward in both
// modes within FP32 rounding of the CPU's on the codes' grid values.
void Validate(const Layer& layer, cuda::ConvS8& conv, cudnnHandle_t handle) {
  ConvGeometry g = layer.g;
  g.n = 2;
  const int64_t xs = g.n * g.h * g.w * g.c, ws = g.o * g.kernel * g.kernel * g.c;
  const int64_t ys = g.n * g.out_h() * g.out_w() * g.o;
  const kernels::Quantized x = Codes(RandomFloats(xs, 1), 0), w = Codes(RandomFloats(ws, 2), 1);
  const kernels::Quantized dy = Codes(RandomFloats(ys, 3), 2);
  std::vector<float> y(ys), dx(xs), dw(ws);
  CheckOk(kernels::ConvForward(g, x, w, {}, y).status(), "CPU forward");
  CheckOk(kernels::ConvBackwardData(g, dy, w, dx).status(), "CPU backward-data");
  CheckOk(kernels::ConvBackwardWeights(g, dy, x, dw, {}).status(), "CPU backward-weights");
  auto d_x = Check(cuda::DeviceBuffer<int8_t>::CopyOf(x.s8), "x");
  auto d_w = Check(cuda::DeviceBuffer<int8_t>::CopyOf(w.s8), "w");
  auto d_dy = Check(cuda::DeviceBuffer<int8_t>::CopyOf(dy.s8), "dy");
  auto d_y = Check(cuda::DeviceBuffer<float>::Allocate(ys), "y");
  auto d_dx = Check(cuda::DeviceBuffer<float>::Allocate(xs), "dx");
  auto d_dw = Check(cuda::DeviceBuffer<float>::Allocate(ws), "dw");
  const float xw = std::ldexp(1.0f, -(x.exponent + w.exponent));
  CheckOk(conv.Forward(g, d_x.data(), d_w.data(), xw, nullptr, d_y.data(), nullptr), "Forward");
  CheckOk(
      conv.BackwardData(g, d_dy.data(), d_w.data(), std::ldexp(1.0f, -(dy.exponent + w.exponent)),
                        nullptr, d_dx.data(), nullptr),
      "BackwardData");
  CheckOk(conv.BackwardWeights(g, d_dy.data(), d_x.data(),
                               std::ldexp(1.0f, -(dy.exponent + x.exponent)), 1.0f, d_dw.data(),
                               nullptr, nullptr),
          "BackwardWeights");
  for (const auto& [pass, device, cpu] : {std::tuple{"forward", &d_y, &y},
                                          {"backward_data", &d_dx, &dx},
                                          {"backward_weights", &d_dw, &dw}}) {
    if (ToHost(*device) != *cpu)
      Fail(absl::StrCat(layer.name, " ", pass, ": differs from the CPU"));
  }
  // cuDNN on the grid values of the same codes.
  std::vector<float> gx(xs), gw(ws);
  kernels::Dequantize(x.s8, x.exponent, gx);
  kernels::Dequantize(w.s8, w.exponent, gw);
  auto f_x = Check(cuda::DeviceBuffer<float>::CopyOf(gx), "grid x");
  auto f_w = Check(cuda::DeviceBuffer<float>::CopyOf(gw), "grid w");
  float largest = 0;
  for (float v : y) largest = std::max(largest, std::abs(v));
  for (cudnnMathType_t math : {CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH}) {
    CudnnConv cudnn(handle, g, math);
    cudnn.Forward(f_x.data(), f_w.data(), d_y.data());
    const std::vector<float> got = ToHost(d_y);
    for (int64_t i = 0; i < ys; ++i) {
      if (std::abs(got[i] - y[i]) > 1e-5f * largest) {
        Fail(absl::StrCat(layer.name, ": cuDNN forward (math ", math, ") y[", i, "] = ", got[i],
                          ", the CPU's ", y[i]));
      }
    }
  }
}

// Device buffers of one layer at the timed batch, filled with finite values.
struct Buffers {
  explicit Buffers(const ConvGeometry& g)
      : xs(g.n * g.h * g.w * g.c),
        ws(g.o * g.kernel * g.kernel * g.c),
        ys(g.n * g.out_h() * g.out_w() * g.o),
        x8(Check(cuda::DeviceBuffer<int8_t>::Allocate(xs), "x8")),
        w8(Check(cuda::DeviceBuffer<int8_t>::Allocate(ws), "w8")),
        dy8(Check(cuda::DeviceBuffer<int8_t>::Allocate(ys), "dy8")),
        x(Check(cuda::DeviceBuffer<float>::Allocate(xs), "x")),
        w(Check(cuda::DeviceBuffer<float>::Allocate(ws), "w")),
        y(Check(cuda::DeviceBuffer<float>::Allocate(ys), "y")),
        dx(Check(cuda::DeviceBuffer<float>::Allocate(xs), "dx")),
        dw(Check(cuda::DeviceBuffer<float>::Allocate(ws), "dw")) {
    CheckCuda(cudaMemset(x8.data(), 3, xs), "memset");
    CheckCuda(cudaMemset(w8.data(), 3, ws), "memset");
    CheckCuda(cudaMemset(dy8.data(), 3, ys), "memset");
    CheckCuda(cudaMemset(x.data(), 0, xs * 4), "memset");
    CheckCuda(cudaMemset(w.data(), 0, ws * 4), "memset");
    CheckCuda(cudaMemset(y.data(), 0, ys * 4), "memset");
  }
  int64_t xs, ws, ys;
  cuda::DeviceBuffer<int8_t> x8, w8, dy8;
  cuda::DeviceBuffer<float> x, w, y, dx, dw;
};

int Main() {
  PrintGpu("cuda_conv");
  cuda::ConvS8 conv = Check(cuda::ConvS8::Create(), "ConvS8::Create");
  cudnnHandle_t handle;
  CheckCudnn(cudnnCreate(&handle), "cudnnCreate");
  const std::vector<Layer> layers = Resnet18();
  for (const Layer& layer : layers) Validate(layer, conv, handle);
  const char* passes[] = {"forward", "backward_data", "backward_weights"};
  std::map<std::string, std::map<std::string, double>> total;  // pass -> route -> seconds.
  for (const Layer& layer : layers) {
    ConvGeometry g = layer.g;
    g.n = 256;
    Buffers b(g);
    CudnnConv fp32(handle, g, CUDNN_FMA_MATH), tf32(handle, g, CUDNN_DEFAULT_MATH);
    for (const char* pass : passes) {
      const std::string p = pass;
      const auto int8 = [&] {
        if (p == "forward") {
          CheckOk(conv.Forward(g, b.x8.data(), b.w8.data(), 1.0f, nullptr, b.y.data(), nullptr),
                  "Forward");
        } else if (p == "backward_data") {
          CheckOk(
              conv.BackwardData(g, b.dy8.data(), b.w8.data(), 1.0f, nullptr, b.dx.data(), nullptr),
              "BackwardData");
        } else {
          CheckOk(conv.BackwardWeights(g, b.dy8.data(), b.x8.data(), 1.0f, 1.0f, b.dw.data(),
                                       nullptr, nullptr),
                  "BackwardWeights");
        }
      };
      const auto cudnn = [&](CudnnConv& c) {
        if (p == "forward") {
          c.Forward(b.x.data(), b.w.data(), b.y.data());
        } else if (p == "backward_data") {
          c.BackwardData(b.w.data(), b.y.data(), b.dx.data());
        } else {
          c.BackwardWeights(b.x.data(), b.y.data(), b.dw.data());
        }
      };
      const double s8 = BestDeviceSeconds(int8);
      const double s32 = BestDeviceSeconds([&] { cudnn(fp32); });
      const double s19 = BestDeviceSeconds([&] { cudnn(tf32); });
      CheckCuda(cudaGetLastError(), "timed passes");
      total[p]["int8"] += s8 * layer.count;
      total[p]["fp32"] += s32 * layer.count;
      total[p]["tf32"] += s19 * layer.count;
      JsonLine()
          .Add("bench", "cuda_conv")
          .Add("layer", layer.name)
          .Add("pass", p)
          .Add("batch", 256)
          .Add("int8_ms", s8 * 1e3)
          .Add("fp32_ms", s32 * 1e3)
          .Add("tf32_ms", s19 * 1e3)
          .Add("int8_vs_fp32", s32 / s8)
          .Add("int8_vs_tf32", s19 / s8)
          .Add("validated", true)
          .Print();
    }
  }
  for (const auto& [pass, t] : total) {
    JsonLine()
        .Add("bench", "cuda_conv")
        .Add("summary", "resnet18_convolutions")
        .Add("pass", pass)
        .Add("int8_ms", t.at("int8") * 1e3)
        .Add("fp32_ms", t.at("fp32") * 1e3)
        .Add("tf32_ms", t.at("tf32") * 1e3)
        .Add("int8_vs_fp32", t.at("fp32") / t.at("int8"))
        .Add("int8_vs_tf32", t.at("tf32") / t.at("int8"))
        .Print();
  }
  cudnnDestroy(handle);
  return 0;
}

}  // namespace
}  // namespace muppet::bench

int main() { return muppet::bench::Main(); }
