// The 8-bit convolution on the tensor cores (kernels/cuda/conv_s8.h) against the CPU's
// (kernels/cpu/fixed_point_conv.h) on the same codes: every output bit-identical (both sum
// exactly in int32, then scale by a power of two and add the bias), on resnet20's layer kinds
// and odd shapes whose GEMM needs padding. Skips, saying why, without CUDA or a GPU.
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/fixed_point_conv.h"

#if MUPPET_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/conv_s8.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
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

  std::optional<cuda::ConvS8> conv_;
};

TEST_F(CudaConvS8Test, ResnetLayersMatchTheCpuBitForBit) {
  for (const kernels::ConvGeometry& g : {
           kernels::ConvGeometry{.n = 8,
          .h = 28,
          .w = 28,
          .c = 1,
          .o = 16,
          .kernel = 3,
          .stride = 1,
          .padding = 1},  // The stem: K = 9, padded.
           {.n = 8, .h = 28, .w = 28, .c = 16, .o = 16, .kernel = 3, .stride = 1, .padding = 1},
           {.n = 8, .h = 28, .w = 28, .c = 16, .o = 32, .kernel = 3, .stride = 2, .padding = 1},
           {.n = 8, .h = 28, .w = 28, .c = 16, .o = 32, .kernel = 1, .stride = 2, .padding = 0},
           {.n = 8, .h = 7, .w = 7, .c = 64, .o = 64, .kernel = 3, .stride = 1, .padding = 1},
       }) {
    ExpectAsOnTheCpu(g, /*with_bias=*/false);
  }
}

TEST_F(CudaConvS8Test, OddShapesAndABiasMatchTheCpu) {
  ExpectAsOnTheCpu({.n = 3, .h = 5, .w = 6, .c = 3, .o = 5, .kernel = 3, .stride = 2, .padding = 1},
                   /*with_bias=*/true);
  ExpectAsOnTheCpu({.n = 1, .h = 9, .w = 9, .c = 4, .o = 7, .kernel = 5, .stride = 3, .padding = 2},
                   /*with_bias=*/true);
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
