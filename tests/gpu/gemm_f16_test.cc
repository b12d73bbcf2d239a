// The FP16 tensor-core GEMM of 9-12-bit codes against an exact CPU reference, on the device:
// exact where every partial sum stays below 2^24, and within FP32's rounding of the exact sum
// beyond. Skips, saying why, without CUDA or a GPU.
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

#if MUPPET_WITH_CUDA
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm_f16.h"
#endif

namespace muppet {
namespace {

#if MUPPET_WITH_CUDA

class CudaGemmF16Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CountDevices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    auto gemm = cuda::GemmF16::Create();
    ASSERT_TRUE(gemm.ok()) << gemm.status();
    gemm_.emplace(*std::move(gemm));
  }

  // C for codes uniform in [-limit, limit - 1], with the exact sums and sums of |products|.
  void Run(const cuda::GemmShape& s, int limit, std::vector<float>& c, std::vector<double>& exact,
           std::vector<double>& magnitude) {
    std::mt19937 rng(static_cast<uint32_t>(s.m * 31 + s.k));
    std::uniform_int_distribution<int> code(-limit, limit - 1);
    std::vector<int> a(s.m * s.k), b(s.n * s.k);
    for (int& v : a) v = code(rng);
    for (int& v : b) v = code(rng);
    std::vector<__half> ha(a.size()), hb(b.size());
    for (size_t i = 0; i < a.size(); ++i) ha[i] = __float2half(static_cast<float>(a[i]));
    for (size_t i = 0; i < b.size(); ++i) hb[i] = __float2half(static_cast<float>(b[i]));
    auto da = cuda::DeviceBuffer<__half>::CopyOf(ha);
    auto db = cuda::DeviceBuffer<__half>::CopyOf(hb);
    auto dc = cuda::DeviceBuffer<float>::Allocate(s.m * s.n);
    ASSERT_TRUE(da.ok() && db.ok() && dc.ok());
    const absl::Status run = gemm_->Run(s, da->data(), db->data(), dc->data(), nullptr);
    ASSERT_TRUE(run.ok()) << run;
    absl::StatusOr<std::vector<float>> back = dc->ToHost();
    ASSERT_TRUE(back.ok()) << back.status();
    c = *std::move(back);
    exact.assign(s.m * s.n, 0);
    magnitude.assign(s.m * s.n, 0);
    for (int64_t i = 0; i < s.m; ++i) {
      for (int64_t j = 0; j < s.n; ++j) {
        for (int64_t p = 0; p < s.k; ++p) {
          const double product = double{1} * a[i * s.k + p] * b[j * s.k + p];
          exact[i * s.n + j] += product;
          magnitude[i * s.n + j] += std::abs(product);
        }
      }
    }
  }

  std::optional<cuda::GemmF16> gemm_;
};

TEST_F(CudaGemmF16Test, ExactWhilePartialSumsStayBelow2To24) {
  // 4-bit codes: |product| <= 64, and 4608 of them sum to at most 294912 < 2^24.
  const cuda::GemmShape s{128, 64, 4608};
  std::vector<float> c;
  std::vector<double> exact, magnitude;
  Run(s, 8, c, exact, magnitude);
  for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], exact[i]) << "element " << i;
}

TEST_F(CudaGemmF16Test, TwelveBitCodesAreWithinFp32RoundingOfTheExactSum) {
  const cuda::GemmShape s{256, 128, 1152};
  std::vector<float> c;
  std::vector<double> exact, magnitude;
  Run(s, 2048, c, exact, magnitude);
  double worst = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const double error = std::abs(c[i] - exact[i]);
    ASSERT_LE(error, s.k * std::ldexp(1.0, -24) * magnitude[i]) << "element " << i;
    worst = std::max(worst, error / magnitude[i]);
  }
  RecordProperty("worst_relative_error", std::to_string(worst));
}

#else

TEST(CudaGemmF16Test, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (no /usr/local/cuda/bin/nvcc): the FP16 GEMM is not compiled";
}

#endif

}  // namespace
}  // namespace muppet
