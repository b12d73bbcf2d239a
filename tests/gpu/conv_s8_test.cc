// The 8-bit convolution on the tensor cores (kernels/cuda/tensor_core_conv.h) against the CPU's
// (kernels/cpu/fixed_point_conv.h) on the same codes, all three passes: every output
// bit-identical (both sum exactly, round once to FP32 and scale by a power of two; the layers'
// sums here stay below 2^24, where the CPU's strided backward-data adds exact floats), on
// resnet20's layer kinds and odd shapes whose GEMMs need padding. Skips, saying why, without CUDA
// or a GPU.
#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/fixed_point_conv.h"

#if MUPPET_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/tensor_core_conv.h"
#endif

namespace muppet {
namespace {

#if MUPPET_WITH_CUDA

std::vector<float> RandomFloats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

kernels::Quantized Codes(const std::vector<float>& x, uint64_t stream) {
  absl::StatusOr<kernels::Quantized> q =
      kernels::QuantizeTensor(x, 8, kernels::Rounding::kStochastic, /*seed=*/5, stream);
  EXPECT_TRUE(q.ok()) << q.status();
  return *std::move(q);
}

class CudaConvS8Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CountDevices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    auto conv = cuda::ConvS8::Create();
    ASSERT_TRUE(conv.ok()) << conv.status();
    conv_.emplace(*std::move(conv));
  }

  void ExpectAsOnTheCpu(const kernels::ConvGeometry& g, bool with_bias) {
    const kernels::Quantized x = Codes(RandomFloats(g.n * g.h * g.w * g.c, 1), 0);
    const kernels::Quantized w = Codes(RandomFloats(g.o * g.kernel * g.kernel * g.c, 2), 1);
    const std::vector<float> bias = with_bias ? RandomFloats(g.o, 3) : std::vector<float>();
    std::vector<float> expected(g.n * g.out_h() * g.out_w() * g.o);
    ASSERT_TRUE(kernels::ConvForward(g, x, w, bias, expected).ok());

    auto dx = cuda::DeviceBuffer<int8_t>::CopyOf(x.s8);
    auto dw = cuda::DeviceBuffer<int8_t>::CopyOf(w.s8);
    auto db = cuda::DeviceBuffer<float>::CopyOf(with_bias ? bias : std::vector<float>{0.0f});
    auto dy = cuda::DeviceBuffer<float>::Allocate(static_cast<int64_t>(expected.size()));
    ASSERT_TRUE(dx.ok() && dw.ok() && db.ok() && dy.ok());
    const absl::Status run =
        conv_->Forward(g, dx->data(), dw->data(), std::ldexp(1.0f, -(x.exponent + w.exponent)),
                       with_bias ? db->data() : nullptr, dy->data(), nullptr);
    ASSERT_TRUE(run.ok()) << run;
    absl::StatusOr<std::vector<float>> y = dy->ToHost();
    ASSERT_TRUE(y.ok()) << y.status();
    EXPECT_EQ(*y, expected) << g.n << "x" << g.h << "x" << g.w << "x" << g.c << " -> " << g.o
                            << ", kernel " << g.kernel << " stride " << g.stride;
  }

  void ExpectBackwardAsOnTheCpu(const kernels::ConvGeometry& g) {
    const int64_t x_size = g.n * g.h * g.w * g.c, k = g.kernel * g.kernel * g.c;
    const kernels::Quantized x = Codes(RandomFloats(x_size, 4), 0);
    const kernels::Quantized w = Codes(RandomFloats(g.o * k, 5), 1);
    const kernels::Quantized dy = Codes(RandomFloats(g.n * g.out_h() * g.out_w() * g.o, 6), 2);
    const std::vector<float> addend = RandomFloats(x_size, 7);
    std::vector<float> dx(x_size), dw(g.o * k), db(g.o);
    ASSERT_TRUE(kernels::ConvBackwardData(g, dy, w, dx, addend).ok());
    ASSERT_TRUE(kernels::ConvBackwardWeights(g, dy, x, dw, db).ok());

    auto d_x = cuda::DeviceBuffer<int8_t>::CopyOf(x.s8);
    auto d_w = cuda::DeviceBuffer<int8_t>::CopyOf(w.s8);
    auto d_dy = cuda::DeviceBuffer<int8_t>::CopyOf(dy.s8);
    auto d_addend = cuda::DeviceBuffer<float>::CopyOf(addend);
    auto d_dx = cuda::DeviceBuffer<float>::Allocate(x_size);
    auto d_dw = cuda::DeviceBuffer<float>::Allocate(g.o * k);
    auto d_db = cuda::DeviceBuffer<float>::Allocate(g.o);
    ASSERT_TRUE(d_x.ok() && d_w.ok() && d_dy.ok() && d_addend.ok() && d_dx.ok() && d_dw.ok() &&
                d_db.ok());
    const absl::Status data = conv_->BackwardData(g, d_dy->data(), d_w->data(),
                                                  std::ldexp(1.0f, -(dy.exponent + w.exponent)),
                                                  d_addend->data(), d_dx->data(), nullptr);
    ASSERT_TRUE(data.ok()) << data;
    const absl::Status weights = conv_->BackwardWeights(
        g, d_dy->data(), d_x->data(), std::ldexp(1.0f, -(dy.exponent + x.exponent)),
        std::ldexp(1.0f, -dy.exponent), d_dw->data(), d_db->data(), nullptr);
    ASSERT_TRUE(weights.ok()) << weights;
    const std::string where = absl::StrCat(g.n, "x", g.h, "x", g.w, "x", g.c, " -> ", g.o,
                                           ", kernel ", g.kernel, " stride ", g.stride);
    EXPECT_EQ(*d_dx->ToHost(), dx) << "dx, " << where;
    EXPECT_EQ(*d_dw->ToHost(), dw) << "dw, " << where;
    EXPECT_EQ(*d_db->ToHost(), db) << "db, " << where;
  }

  std::optional<cuda::ConvS8> conv_;
};

// resnet20's kinds of layer, at batch 8.
const kernels::ConvGeometry kResnetLayers[] = {
    {.n = 8, .h = 28, .w = 28, .c = 1, .o = 16, .kernel = 3, .stride = 1, .padding = 1},
    {.n = 8, .h = 28, .w = 28, .c = 16, .o = 16, .kernel = 3, .stride = 1, .padding = 1},
    {.n = 8, .h = 28, .w = 28, .c = 16, .o = 32, .kernel = 3, .stride = 2, .padding = 1},
    {.n = 8, .h = 28, .w = 28, .c = 16, .o = 32, .kernel = 1, .stride = 2, .padding = 0},
    {.n = 8, .h = 7, .w = 7, .c = 64, .o = 64, .kernel = 3, .stride = 1, .padding = 1},
};

// Shapes whose GEMMs need padding in every dimension, and a stride that skips input pixels.
const kernels::ConvGeometry kOddShapes[] = {
    {.n = 3, .h = 5, .w = 6, .c = 3, .o = 5, .kernel = 3, .stride = 2, .padding = 1},
    {.n = 1, .h = 9, .w = 9, .c = 4, .o = 7, .kernel = 5, .stride = 3, .padding = 2},
    {.n = 1, .h = 9, .w = 9, .c = 4, .o = 7, .kernel = 2, .stride = 3, .padding = 1},
    // A fully connected layer is a 1x1 convolution of 1x1 images: alexnet's last, batch 128.
    {.n = 128, .h = 1, .w = 1, .c = 4096, .o = 10, .kernel = 1, .stride = 1, .padding = 0},
};

TEST_F(CudaConvS8Test, ResnetLayersMatchTheCpuBitForBit) {
  for (const kernels::ConvGeometry& g : kResnetLayers) {
    ExpectAsOnTheCpu(g, /*with_bias=*/false);
    ExpectBackwardAsOnTheCpu(g);
  }
}

TEST_F(CudaConvS8Test, OddShapesAndABiasMatchTheCpu) {
  for (const kernels::ConvGeometry& g : kOddShapes) {
    ExpectAsOnTheCpu(g, /*with_bias=*/true);
    ExpectBackwardAsOnTheCpu(g);
  }
}

TEST_F(CudaConvS8Test, TheWeightGradientOverManyPixelsIsExact) {
  // 141,120 output pixels: the reduction over them runs in two chunks of int32 sums.
  ExpectBackwardAsOnTheCpu(
      {.n = 180, .h = 28, .w = 28, .c = 16, .o = 16, .kernel = 3, .stride = 1, .padding = 1});
}

TEST_F(CudaConvS8Test, RefusesABadGeometryNamingTheField) {
  const absl::Status s = conv_->Forward({.n = 1, .h = 4, .w = 4, .c = 0, .o = 1}, nullptr, nullptr,
                                        1.0f, nullptr, nullptr, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("c:"), std::string::npos) << s;
}

#else

TEST(CudaConvS8Test, SkippedWithoutCuda) {
  GTEST_SKIP()
      << "built without CUDA (no /usr/local/cuda/bin/nvcc): the 8-bit convolution is not compiled";
}

#endif

}  // namespace
}  // namespace muppet
