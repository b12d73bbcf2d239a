// The FP32 layers on the GPU (kernels/cuda: cudnn_conv.h, batch_norm.h, pooling.h, linear.h)
// against the CPU engine's layers (worker/nn) on the same random tensors: every pass of the
// convolution, BatchNorm (its running statistics included), max, average and global average
// pooling, and the fully connected layer. Exact FP32 differs from the CPU only in the order of
// its sums, so it is checked within a small multiple of FP32's rounding of the largest value;
// TF32 within its 11-bit operands' rounding; max pooling, which only selects, bit for bit. Skips,
// saying why, without CUDA or a GPU.
#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "worker/nn/batch_norm.h"
#include "worker/nn/conv2d.h"
#include "worker/nn/layer.h"
#include "worker/nn/linear.h"
#include "worker/nn/pooling.h"
#include "worker/tensor/tensor.h"

#if MUPPET_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/batch_norm.h"
#include "kernels/cuda/cudnn.h"
#include "kernels/cuda/cudnn_conv.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/pooling.h"
#endif

namespace muppet {
namespace {

#if MUPPET_WITH_CUDA

using cuda::DeviceBuffer;
using cuda::FloatMath;

// Relative to the largest |value| of the CPU's result: exact FP32 (other summation orders) and
// TF32 (operands rounded to 11 significant bits, relative error up to 2^-11 each).
constexpr float kExact = 2e-5f;
constexpr float kTf32 = 4e-3f;

float Tolerance(FloatMath math) { return math == FloatMath::kExact ? kExact : kTf32; }

void FillRandom(Tensor& t, uint32_t seed, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, 1.0f);
  for (float& v : t.span()) v = normal(rng);
}

Tensor Random(const Shape& shape, uint32_t seed, float mean = 0.0f) {
  Tensor t(shape);
  FillRandom(t, seed, mean);
  return t;
}

DeviceBuffer<float> OnDevice(const Tensor& t) {
  absl::StatusOr<DeviceBuffer<float>> b = DeviceBuffer<float>::CopyOf(t.span());
  EXPECT_TRUE(b.ok()) << b.status();
  return *std::move(b);
}

DeviceBuffer<float> Zeros(int64_t n) {
  absl::StatusOr<DeviceBuffer<float>> b = DeviceBuffer<float>::Allocate(n);
  EXPECT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(cudaMemset(b->data(), 0, n * sizeof(float)), cudaSuccess);
  return *std::move(b);
}

std::vector<float> OnHost(const DeviceBuffer<float>& b) {
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  absl::StatusOr<std::vector<float>> v = b.ToHost();
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *std::move(v) : std::vector<float>();
}

// |got - want| <= tolerance * max |want| everywhere (tolerance 0: the same values).
void ExpectNear(const std::vector<float>& got, std::span<const float> want, float tolerance,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  float largest = 0;
  for (float v : want) largest = std::max(largest, std::abs(v));
  const float bound = tolerance * largest;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(std::abs(got[i] - want[i]), bound)
        << what << "[" << i << "]: " << got[i] << ", the CPU's " << want[i];
  }
}

class Fp32LayersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CountDevices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    absl::StatusOr<cuda::Cudnn> cudnn = cuda::Cudnn::Create(nullptr);
    ASSERT_TRUE(cudnn.ok()) << cudnn.status();
    cudnn_.emplace(*std::move(cudnn));
  }

  std::optional<cuda::Cudnn> cudnn_;
};

struct ConvCase {
  int64_t n, h, c, o, kernel, stride, padding;
};

TEST_F(Fp32LayersTest, ConvolutionPassesMatchTheCpuLayer) {
  const ConvCase cases[] = {{2, 16, 16, 16, 3, 1, 1},
                            {2, 16, 16, 32, 3, 2, 1},
                            {2, 16, 16, 32, 1, 2, 0},
                            {2, 32, 3, 16, 7, 2, 3}};
  uint32_t seed = 1;
  for (const ConvCase& k : cases) {
    const std::string name = absl::StrCat(k.h, "x", k.h, "x", k.c, " -> ", k.o, " k", k.kernel,
                                          " s", k.stride, " p", k.padding);
    Conv2d cpu("conv", {.in_channels = k.c,
                        .out_channels = k.o,
                        .kernel = k.kernel,
                        .stride = k.stride,
                        .padding = k.padding,
                        .bias = true});
    FillRandom(cpu.weight().value, seed++);
    FillRandom(cpu.bias()->value, seed++);
    const Tensor x = Random({k.n, k.c, k.h, k.h}, seed++);
    const Tensor& y = cpu.Forward(x, Mode::kTrain);
    const Tensor dy = Random(y.shape(), seed++);
    const Tensor& dx = cpu.Backward(dy);
    const kernels::ConvGeometry g{.n = k.n,
                                  .h = k.h,
                                  .w = k.h,
                                  .c = k.c,
                                  .o = k.o,
                                  .kernel = k.kernel,
                                  .stride = k.stride,
                                  .padding = k.padding};
    ASSERT_EQ(y.size(), g.n * g.out_h() * g.out_w() * g.o) << name;
    const DeviceBuffer<float> gx = OnDevice(x), gw = OnDevice(cpu.weight().value);
    const DeviceBuffer<float> gb = OnDevice(cpu.bias()->value), gdy = OnDevice(dy);
    for (FloatMath math : {FloatMath::kExact, FloatMath::kTf32}) {
      const std::string what = absl::StrCat(name, " in ", cuda::FloatMathName(math), ": ");
      absl::StatusOr<cuda::CudnnConv> conv = cuda::CudnnConv::Create(*cudnn_, g, math);
      ASSERT_TRUE(conv.ok()) << what << conv.status();
      DeviceBuffer<float> gy = Zeros(y.size()), gdx = Zeros(x.size());
      DeviceBuffer<float> gdw = Zeros(cpu.weight().grad.size()), gdb = Zeros(k.o);
      ASSERT_TRUE(conv->Forward(gx.data(), gw.data(), gb.data(), gy.data()).ok());
      ASSERT_TRUE(conv->BackwardData(gw.data(), gdy.data(), false, gdx.data()).ok());
      ASSERT_TRUE(conv->BackwardWeights(gx.data(), gdy.data(), gdw.data()).ok());
      ASSERT_TRUE(conv->BackwardBias(gdy.data(), gdb.data()).ok());
      ExpectNear(OnHost(gy), y.span(), Tolerance(math), what + "y");
      ExpectNear(OnHost(gdx), dx.span(), Tolerance(math), what + "dx");
      ExpectNear(OnHost(gdw), cpu.weight().grad.span(), Tolerance(math), what + "dw");
      ExpectNear(OnHost(gdb), cpu.bias()->grad.span(), kExact, what + "db");
      // Accumulating adds the same gradient to what is there: twice the CPU's.
      ASSERT_TRUE(conv->BackwardData(gw.data(), gdy.data(), true, gdx.data()).ok());
      std::vector<float> twice(dx.span().begin(), dx.span().end());
      for (float& v : twice) v *= 2;
      ExpectNear(OnHost(gdx), twice, Tolerance(math), what + "dx accumulated");
    }
  }
}

TEST_F(Fp32LayersTest, ConvolutionRefusesGeometriesWithoutOutput) {
  const kernels::ConvGeometry g{.n = 1, .h = 2, .w = 2, .c = 1, .o = 1, .kernel = 5};
  absl::StatusOr<cuda::CudnnConv> conv = cuda::CudnnConv::Create(*cudnn_, g, FloatMath::kExact);
  EXPECT_EQ(conv.status().code(), absl::StatusCode::kInvalidArgument) << conv.status();
}

TEST_F(Fp32LayersTest, BatchNormMatchesTheCpuLayerInTrainingAndEvaluation) {
  const int64_t n = 4, c = 24, h = 9, w = 7;
  BatchNorm2d cpu("bn", c);
  FillRandom(cpu.gamma().value, 1, 1.0f);
  FillRandom(cpu.beta().value, 2);
  const Tensor x = Random({n, c, h, w}, 3, 0.5f);
  const DeviceBuffer<float> gx = OnDevice(x), gamma = OnDevice(cpu.gamma().value);
  const DeviceBuffer<float> beta = OnDevice(cpu.beta().value);
  DeviceBuffer<float> running_mean = OnDevice(cpu.running_mean());
  DeviceBuffer<float> running_var = OnDevice(cpu.running_var());

  const Tensor& y = cpu.Forward(x, Mode::kTrain);
  const Tensor dy = Random(y.shape(), 4);
  const Tensor& dx = cpu.Backward(dy);

  absl::StatusOr<cuda::CudnnBatchNorm> bn =
      cuda::CudnnBatchNorm::Create(*cudnn_, n, c, h, w, 0.1, 1e-5);
  ASSERT_TRUE(bn.ok()) << bn.status();
  DeviceBuffer<float> gy = Zeros(x.size()), mean = Zeros(c), inv_std = Zeros(c);
  ASSERT_TRUE(bn->ForwardTraining(gx.data(), gamma.data(), beta.data(), gy.data(),
                                  running_mean.data(), running_var.data(), mean.data(),
                                  inv_std.data())
                  .ok());
  ExpectNear(OnHost(gy), y.span(), 1e-5f, "training y");
  ExpectNear(OnHost(running_mean), cpu.running_mean().span(), 1e-5f, "running mean");
  ExpectNear(OnHost(running_var), cpu.running_var().span(), 1e-5f, "running variance");

  const DeviceBuffer<float> gdy = OnDevice(dy);
  DeviceBuffer<float> gdx = Zeros(x.size()), dgamma = Zeros(c), dbeta = Zeros(c);
  ASSERT_TRUE(bn->Backward(gx.data(), gdy.data(), gamma.data(), mean.data(), inv_std.data(),
                           gdx.data(), dgamma.data(), dbeta.data())
                  .ok());
  ExpectNear(OnHost(gdx), dx.span(), 1e-4f, "dx");
  ExpectNear(OnHost(dgamma), cpu.gamma().grad.span(), 1e-5f, "dgamma");
  ExpectNear(OnHost(dbeta), cpu.beta().grad.span(), 1e-5f, "dbeta");

  // Evaluation uses the running statistics, which both moved the same way above.
  const Tensor x2 = Random({n, c, h, w}, 5);
  const Tensor& y2 = cpu.Forward(x2, Mode::kEval);
  const DeviceBuffer<float> gx2 = OnDevice(x2);
  ASSERT_TRUE(bn->ForwardInference(gx2.data(), gamma.data(), beta.data(), running_mean.data(),
                                   running_var.data(), gy.data())
                  .ok());
  ExpectNear(OnHost(gy), y2.span(), 1e-5f, "evaluation y");
}

TEST_F(Fp32LayersTest, BatchNormRefusesAnEpsilonBelowCudnnsMinimum) {
  absl::StatusOr<cuda::CudnnBatchNorm> bn =
      cuda::CudnnBatchNorm::Create(*cudnn_, 2, 4, 3, 3, 0.1, 1e-7);
  EXPECT_EQ(bn.status().code(), absl::StatusCode::kInvalidArgument) << bn.status();
  EXPECT_NE(bn.status().message().find("epsilon"), std::string::npos) << bn.status();
}

// One pooling layer on the CPU and the GPU, forward and backward.
void ExpectPoolMatches(cuda::Cudnn& cudnn, Layer& cpu, cuda::PoolKind kind,
                       const cuda::PoolGeometry& g, float tolerance, const std::string& what) {
  const Tensor x = Random({g.n, g.c, g.h, g.w}, 7);
  const Tensor& y = cpu.Forward(x, Mode::kTrain);
  ASSERT_EQ(y.size(), g.n * g.out_h() * g.out_w() * g.c) << what;
  const Tensor dy = Random(y.shape(), 8);
  const Tensor& dx = cpu.Backward(dy);
  absl::StatusOr<cuda::CudnnPool> pool = cuda::CudnnPool::Create(cudnn, kind, g);
  ASSERT_TRUE(pool.ok()) << what << pool.status();
  const DeviceBuffer<float> gx = OnDevice(x), gdy = OnDevice(dy);
  DeviceBuffer<float> gy = Zeros(y.size()), gdx = Zeros(x.size());
  ASSERT_TRUE(pool->Forward(gx.data(), gy.data()).ok()) << what;
  ASSERT_TRUE(pool->Backward(gx.data(), gy.data(), gdy.data(), gdx.data()).ok()) << what;
  ExpectNear(OnHost(gy), y.span(), tolerance, what + " y");
  ExpectNear(OnHost(gdx), dx.span(), tolerance, what + " dx");
}

TEST_F(Fp32LayersTest, PoolingMatchesTheCpuLayers) {
  const int64_t n = 2, c = 16, h = 15;
  {
    Pool2d cpu(Pool2d::Kind::kMax, {.kernel = 3, .stride = 2, .padding = 1});
    ExpectPoolMatches(
        *cudnn_, cpu, cuda::PoolKind::kMax,
        {.n = n, .h = h, .w = h, .c = c, .window_h = 3, .window_w = 3, .stride = 2, .padding = 1},
        0.0f, "max 3x3/2 pad 1");
  }
  {
    Pool2d cpu(Pool2d::Kind::kMax, {.kernel = 2, .stride = 2});
    ExpectPoolMatches(*cudnn_, cpu, cuda::PoolKind::kMax,
                      {.n = n, .h = 16, .w = 16, .c = c, .window_h = 2, .window_w = 2, .stride = 2},
                      0.0f, "max 2x2/2");
  }
  {
    Pool2d cpu(Pool2d::Kind::kAverage, {.kernel = 3, .stride = 1, .padding = 1});
    ExpectPoolMatches(
        *cudnn_, cpu, cuda::PoolKind::kAverage,
        {.n = n, .h = h, .w = h, .c = c, .window_h = 3, .window_w = 3, .stride = 1, .padding = 1},
        kExact, "average 3x3/1 pad 1, padding counted");
  }
  {
    GlobalAvgPool cpu;
    ExpectPoolMatches(*cudnn_, cpu, cuda::PoolKind::kAverage,
                      {.n = n, .h = 8, .w = 6, .c = c, .window_h = 8, .window_w = 6, .stride = 1},
                      kExact, "global average");
  }
}

TEST_F(Fp32LayersTest, LinearPassesMatchTheCpuLayer) {
  const cuda::LinearShape s{.m = 32, .k = 200, .n = 10};
  Linear cpu("fc", s.k, s.n);
  FillRandom(cpu.weight().value, 1);
  FillRandom(cpu.bias().value, 2);
  const Tensor x = Random({s.m, s.k}, 3);
  const Tensor& y = cpu.Forward(x, Mode::kTrain);
  const Tensor dy = Random(y.shape(), 4);
  const Tensor& dx = cpu.Backward(dy);
  const DeviceBuffer<float> gx = OnDevice(x), w = OnDevice(cpu.weight().value);
  const DeviceBuffer<float> b = OnDevice(cpu.bias().value), gdy = OnDevice(dy);
  for (FloatMath math : {FloatMath::kExact, FloatMath::kTf32}) {
    const std::string what = absl::StrCat("linear in ", cuda::FloatMathName(math), ": ");
    absl::StatusOr<cuda::LinearF32> linear = cuda::LinearF32::Create(math);
    ASSERT_TRUE(linear.ok()) << linear.status();
    DeviceBuffer<float> gy = Zeros(y.size()), gdx = Zeros(x.size());
    DeviceBuffer<float> gdw = Zeros(s.n * s.k), gdb = Zeros(s.n);
    ASSERT_TRUE(linear->Forward(s, gx.data(), w.data(), b.data(), gy.data(), nullptr).ok());
    ASSERT_TRUE(linear->BackwardData(s, gdy.data(), w.data(), gdx.data(), nullptr).ok());
    ASSERT_TRUE(
        linear->BackwardWeights(s, gx.data(), gdy.data(), gdw.data(), gdb.data(), nullptr).ok());
    ExpectNear(OnHost(gy), y.span(), Tolerance(math), what + "y");
    ExpectNear(OnHost(gdx), dx.span(), Tolerance(math), what + "dx");
    ExpectNear(OnHost(gdw), cpu.weight().grad.span(), Tolerance(math), what + "dw");
    ExpectNear(OnHost(gdb), cpu.bias().grad.span(), kExact, what + "db");
  }
}

TEST_F(Fp32LayersTest, LinearRefusesAnEmptyShape) {
  absl::StatusOr<cuda::LinearF32> linear = cuda::LinearF32::Create(FloatMath::kExact);
  ASSERT_TRUE(linear.ok()) << linear.status();
  const absl::Status s =
      linear->Forward({.m = 0, .k = 4, .n = 4}, nullptr, nullptr, nullptr, nullptr, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

#else

TEST(Fp32LayersTest, NeedsCuda) {
  GTEST_SKIP() << "built without CUDA (no /usr/local/cuda/bin/nvcc): the layers are not compiled";
}

#endif

}  // namespace
}  // namespace muppet
