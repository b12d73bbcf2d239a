// The 8-bit convolution on the tensor cores (kernels/cuda/tensor_core_conv.h) against cuDNN's FP32
// convolution, exact FP32 (CUDNN_FMA_MATH) and TF32 tensor cores (CUDNN_DEFAULT_MATH, PyTorch's
// default for convolutions), on resnet18's convolutions at batch 256 (ImageNet layout, 224 x 224
// input), forward, backward-data and backward-weights, in one run. Validation first, at batch 2:
// every pass of the 8-bit convolution bit for bit against the CPU's (kernels/cpu), and cuDNN's
// forward in both modes against the CPU's on the same grid values (within FP32 rounding). Then
// each is timed (best of 10, CUDA events; cuDNN through kernels/cuda/cudnn_conv.h, with the first
// deterministic algorithm its heuristics rank in each math mode), the 8-bit time including its
// im2col and transposes but not the quantisation of its operands. One JSON line per layer and pass,
// then per pass the aggregate over resnet18's 20 convolutions.
//   bazel run -c opt //bench:cuda_conv
#include <cuda_runtime.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/cuda_harness.h"
#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/fixed_point_conv.h"
#include "kernels/cuda/cudnn.h"
#include "kernels/cuda/cudnn_conv.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/tensor_core_conv.h"

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

std::vector<float> RandomFloats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

kernels::Quantized Codes(const std::vector<float>& x, int bits, uint64_t stream) {
  return Check(kernels::QuantizeTensor(x, bits, kernels::Rounding::kStochastic, 5, stream),
               "QuantizeTensor");
}

template <typename T>
std::vector<T> ToHost(const cuda::DeviceBuffer<T>& buffer) {
  CheckCuda(cudaDeviceSynchronize(), "a pass");
  return Check(buffer.ToHost(), "to host");
}

// A layer's operands quantised at one word length, and the CPU's three passes on them.
struct CpuPasses {
  kernels::Quantized x, w, dy;
  std::vector<float> y, dx, dw;
  float xw() const { return std::ldexp(1.0f, -(x.exponent + w.exponent)); }
  float dyw() const { return std::ldexp(1.0f, -(dy.exponent + w.exponent)); }
  float dyx() const { return std::ldexp(1.0f, -(dy.exponent + x.exponent)); }
};

CpuPasses OnTheCpu(const ConvGeometry& g, int bits) {
  const int64_t xs = g.n * g.h * g.w * g.c, ws = g.o * g.kernel * g.kernel * g.c;
  const int64_t ys = g.n * g.out_h() * g.out_w() * g.o;
  CpuPasses p{.x = Codes(RandomFloats(xs, 1), bits, 0),
              .w = Codes(RandomFloats(ws, 2), bits, 1),
              .dy = Codes(RandomFloats(ys, 3), bits, 2),
              .y = std::vector<float>(ys),
              .dx = std::vector<float>(xs),
              .dw = std::vector<float>(ws)};
  CheckOk(kernels::ConvForward(g, p.x, p.w, {}, p.y).status(), "CPU forward");
  CheckOk(kernels::ConvBackwardData(g, p.dy, p.w, p.dx).status(), "CPU backward-data");
  CheckOk(kernels::ConvBackwardWeights(g, p.dy, p.x, p.dw, {}).status(), "CPU backward-weights");
  return p;
}

// The codes as the device route takes them: int8, int16, or FP16 values of 9-12-bit codes.
template <typename Code>
cuda::DeviceBuffer<Code> DeviceCodes(const kernels::Quantized& q) {
  std::vector<Code> codes(q.size());
  for (int64_t i = 0; i < q.size(); ++i) {
    const int code = q.word_length <= 8 ? q.s8[i] : q.s16[i];
    if constexpr (std::is_same_v<Code, __half>) {
      codes[i] = __float2half(static_cast<float>(code));  // Exact: at most 12 bits.
    } else {
      codes[i] = static_cast<Code>(code);
    }
  }
  return Check(cuda::DeviceBuffer<Code>::CopyOf(codes), "codes");
}

// Fail()s unless `got` equals `want` exactly, or within `tolerance` x max |want|.
void Compare(const std::vector<float>& got, const std::vector<float>& want, float tolerance,
             const std::string& what) {
  float largest = 0;
  for (float v : want) largest = std::max(largest, std::abs(v));
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::abs(got[i] - want[i]) > tolerance * largest) {
      Fail(absl::StrCat(what, "[", i, "] = ", got[i], ", the CPU's ", want[i]));
    }
  }
}

// The three passes of a tensor-core route at batch 2 against the CPU's at `bits`.
template <typename Code>
void ValidateRoute(const std::string& layer, const ConvGeometry& g,
                   cuda::TensorCoreConv<Code>& conv, int bits, float tolerance) {
  const CpuPasses p = OnTheCpu(g, bits);
  const cuda::DeviceBuffer<Code> x = DeviceCodes<Code>(p.x), w = DeviceCodes<Code>(p.w);
  const cuda::DeviceBuffer<Code> dy = DeviceCodes<Code>(p.dy);
  auto y = Check(cuda::DeviceBuffer<float>::Allocate(p.y.size()), "y");
  auto dx = Check(cuda::DeviceBuffer<float>::Allocate(p.dx.size()), "dx");
  auto dw = Check(cuda::DeviceBuffer<float>::Allocate(p.dw.size()), "dw");
  CheckOk(conv.Forward(g, x.data(), w.data(), p.xw(), nullptr, y.data(), nullptr), "Forward");
  CheckOk(conv.BackwardData(g, dy.data(), w.data(), p.dyw(), nullptr, dx.data(), nullptr),
          "BackwardData");
  CheckOk(conv.BackwardWeights(g, dy.data(), x.data(), p.dyx(), 1.0f, dw.data(), nullptr, nullptr),
          "BackwardWeights");
  const std::string what = absl::StrCat(layer, " at ", bits, " bits: ");
  Compare(ToHost(y), p.y, tolerance, what + "y");
  Compare(ToHost(dx), p.dx, tolerance, what + "dx");
  Compare(ToHost(dw), p.dw, tolerance, what + "dw");
}

// The layer at batch 2: the 8-bit passes bit for bit against the CPU's, the 12- and 16-bit ones
// within FP32 rounding of the CPU's (which adds blocks of exact sums in FP32, as FP16's tensor
// cores accumulate in FP32), cuDNN's forward in both modes within FP32 rounding of the CPU's on
// the 8-bit codes' grid values.
void Validate(const Layer& layer, cuda::ConvS8& s8, cuda::ConvF16& f16, cuda::ConvS16& s16,
              cuda::Cudnn& cudnn) {
  ConvGeometry g = layer.g;
  g.n = 2;
  ValidateRoute(layer.name, g, s8, 8, 0.0f);
  ValidateRoute(layer.name, g, f16, 12, 1e-5f);
  ValidateRoute(layer.name, g, s16, 16, 1e-5f);
  const CpuPasses p = OnTheCpu(g, 8);
  std::vector<float> gx(p.x.size()), gw(p.w.size());
  kernels::Dequantize(p.x.s8, p.x.exponent, gx);
  kernels::Dequantize(p.w.s8, p.w.exponent, gw);
  auto x = Check(cuda::DeviceBuffer<float>::CopyOf(gx), "grid x");
  auto w = Check(cuda::DeviceBuffer<float>::CopyOf(gw), "grid w");
  auto y = Check(cuda::DeviceBuffer<float>::Allocate(p.y.size()), "y");
  for (cuda::FloatMath math : {cuda::FloatMath::kExact, cuda::FloatMath::kTf32}) {
    cuda::CudnnConv conv = Check(cuda::CudnnConv::Create(cudnn, g, math), "CudnnConv::Create");
    CheckOk(conv.Forward(x.data(), w.data(), nullptr, y.data()), "cuDNN forward");
    // TF32 rounds the grid values' products no further: 8-bit codes have at most 8 significant
    // bits, within TF32's 11.
    Compare(ToHost(y), p.y, 1e-5f,
            absl::StrCat(layer.name, ": cuDNN forward in ", cuda::FloatMathName(math), ", y"));
  }
}

// One pass of a tensor-core convolution on codes, scales 1.
template <typename Code>
void RunPass(cuda::TensorCoreConv<Code>& conv, const ConvGeometry& g, const std::string& pass,
             const Code* x, const Code* w, const Code* dy, float* y, float* dx, float* dw) {
  if (pass == "forward") {
    CheckOk(conv.Forward(g, x, w, 1.0f, nullptr, y, nullptr), "Forward");
  } else if (pass == "backward_data") {
    CheckOk(conv.BackwardData(g, dy, w, 1.0f, nullptr, dx, nullptr), "BackwardData");
  } else {
    CheckOk(conv.BackwardWeights(g, dy, x, 1.0f, 1.0f, dw, nullptr, nullptr), "BackwardWeights");
  }
}

// A layer's tensors at the timed batch, in one type, zero-filled.
template <typename T>
struct Tensors {
  explicit Tensors(const ConvGeometry& g)
      : x(Zeros(g.n * g.h * g.w * g.c)),
        w(Zeros(g.o * g.kernel * g.kernel * g.c)),
        dy(Zeros(g.n * g.out_h() * g.out_w() * g.o)) {}
  static cuda::DeviceBuffer<T> Zeros(int64_t n) {
    cuda::DeviceBuffer<T> b = Check(cuda::DeviceBuffer<T>::Allocate(n), "tensor");
    CheckCuda(cudaMemset(b.data(), 0, n * sizeof(T)), "cudaMemset");
    return b;
  }
  cuda::DeviceBuffer<T> x, w, dy;
};

// The routes timed, in the order of the JSON fields.
constexpr const char* kRoutes[] = {"int8", "fp16_codes", "int16_split", "fp32", "tf32"};

int Main() {
  PrintGpu("cuda_conv");
  cuda::ConvS8 s8 = Check(cuda::ConvS8::Create(), "ConvS8::Create");
  cuda::ConvF16 f16 = Check(cuda::ConvF16::Create(), "ConvF16::Create");
  cuda::ConvS16 s16 = Check(cuda::ConvS16::Create(), "ConvS16::Create");
  cuda::Cudnn cudnn = Check(cuda::Cudnn::Create(nullptr), "Cudnn::Create");
  const std::vector<Layer> layers = Resnet18();
  for (const Layer& layer : layers) Validate(layer, s8, f16, s16, cudnn);
  const char* passes[] = {"forward", "backward_data", "backward_weights"};
  std::map<std::string, std::map<std::string, double>> total;  // pass -> route -> seconds.
  for (const Layer& layer : layers) {
    ConvGeometry g = layer.g;
    g.n = 256;
    Tensors<int8_t> c8(g);
    Tensors<__half> c12(g);
    Tensors<int16_t> c16(g);
    Tensors<float> f(g);
    auto y = Tensors<float>::Zeros(f.dy.size()), dx = Tensors<float>::Zeros(f.x.size());
    auto dw = Tensors<float>::Zeros(f.w.size());
    cuda::CudnnConv fp32 =
        Check(cuda::CudnnConv::Create(cudnn, g, cuda::FloatMath::kExact), "CudnnConv fp32");
    cuda::CudnnConv tf32 =
        Check(cuda::CudnnConv::Create(cudnn, g, cuda::FloatMath::kTf32), "CudnnConv tf32");
    for (const std::string pass : passes) {
      const auto run_cudnn = [&](cuda::CudnnConv& c) {
        if (pass == "forward") {
          CheckOk(c.Forward(f.x.data(), f.w.data(), nullptr, y.data()), "cuDNN forward");
        } else if (pass == "backward_data") {
          CheckOk(c.BackwardData(f.w.data(), f.dy.data(), false, dx.data()), "cuDNN backward-data");
        } else {
          CheckOk(c.BackwardWeights(f.x.data(), f.dy.data(), dw.data()), "cuDNN backward-weights");
        }
      };
      std::map<std::string, double> seconds;
      seconds["int8"] = BestDeviceSeconds([&] {
        RunPass(s8, g, pass, c8.x.data(), c8.w.data(), c8.dy.data(), y.data(), dx.data(),
                dw.data());
      });
      seconds["fp16_codes"] = BestDeviceSeconds([&] {
        RunPass(f16, g, pass, c12.x.data(), c12.w.data(), c12.dy.data(), y.data(), dx.data(),
                dw.data());
      });
      seconds["int16_split"] = BestDeviceSeconds([&] {
        RunPass(s16, g, pass, c16.x.data(), c16.w.data(), c16.dy.data(), y.data(), dx.data(),
                dw.data());
      });
      seconds["fp32"] = BestDeviceSeconds([&] { run_cudnn(fp32); });
      seconds["tf32"] = BestDeviceSeconds([&] { run_cudnn(tf32); });
      CheckCuda(cudaGetLastError(), "timed passes");
      JsonLine line;
      line.Add("bench", "cuda_conv").Add("layer", layer.name).Add("pass", pass).Add("batch", 256);
      for (const char* route : kRoutes) {
        total[pass][route] += seconds[route] * layer.count;
        line.Add(absl::StrCat(route, "_ms"), seconds[route] * 1e3);
      }
      for (const char* route : {"int8", "fp16_codes", "int16_split"}) {
        line.Add(absl::StrCat(route, "_vs_tf32"), seconds["tf32"] / seconds[route]);
      }
      line.Add("int8_vs_fp32", seconds["fp32"] / seconds["int8"]).Add("validated", true).Print();
    }
  }
  for (const auto& [pass, t] : total) {
    JsonLine line;
    line.Add("bench", "cuda_conv").Add("summary", "resnet18_convolutions").Add("pass", pass);
    for (const char* route : kRoutes) line.Add(absl::StrCat(route, "_ms"), t.at(route) * 1e3);
    for (const char* route : {"int8", "fp16_codes", "int16_split"}) {
      line.Add(absl::StrCat(route, "_vs_tf32"), t.at("tf32") / t.at(route));
    }
    line.Add("int8_vs_fp32", t.at("fp32") / t.at("int8")).Print();
  }
  return 0;
}

}  // namespace
}  // namespace muppet::bench

int main() { return muppet::bench::Main(); }
