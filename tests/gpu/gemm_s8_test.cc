// cuBLASLt's int8 GEMM against an exact CPU reference, on the device: every int32 sum equal, for
// shapes from the smallest to a convolution's, and for the extreme codes. Skips, saying why,
// without CUDA or a GPU.
#include <random>
#include <vector>

#include "gtest/gtest.h"

#if MUPPET_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm_s8.h"
#endif

namespace muppet {
namespace {

#if MUPPET_WITH_CUDA

// C (m x n) = A (m x k) * B (n x k)^T, exactly.
std::vector<int32_t> Reference(const std::vector<int8_t>& a, const std::vector<int8_t>& b,
                               const cuda::GemmShape& s) {
  std::vector<int32_t> c(s.m * s.n);
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      int64_t sum = 0;
      for (int64_t p = 0; p < s.k; ++p) sum += int64_t{a[i * s.k + p]} * b[j * s.k + p];
      c[i * s.n + j] = static_cast<int32_t>(sum);
    }
  }
  return c;
}

class CudaGemmS8Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CountDevices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    auto gemm = cuda::GemmS8::Create();
    ASSERT_TRUE(gemm.ok()) << gemm.status();
    gemm_.emplace(*std::move(gemm));
  }

  void ExpectExact(const std::vector<int8_t>& a, const std::vector<int8_t>& b,
                   const cuda::GemmShape& s) {
    absl::StatusOr<cuda::DeviceBuffer<int8_t>> da = cuda::DeviceBuffer<int8_t>::CopyOf(a);
    absl::StatusOr<cuda::DeviceBuffer<int8_t>> db = cuda::DeviceBuffer<int8_t>::CopyOf(b);
    absl::StatusOr<cuda::DeviceBuffer<int32_t>> dc =
        cuda::DeviceBuffer<int32_t>::Allocate(s.m * s.n);
    ASSERT_TRUE(da.ok() && db.ok() && dc.ok());
    const absl::Status run = gemm_->Run(s, da->data(), db->data(), dc->data(), nullptr);
    ASSERT_TRUE(run.ok()) << run;
    absl::StatusOr<std::vector<int32_t>> c = dc->ToHost();
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(*c, Reference(a, b, s)) << s.m << "x" << s.n << "x" << s.k;
  }

  std::optional<cuda::GemmS8> gemm_;
};

std::vector<int8_t> RandomCodes(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-128, 127);
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = static_cast<int8_t>(code(rng));
  return v;
}

TEST_F(CudaGemmS8Test, EverySumIsExact) {
  uint32_t seed = 1;
  for (const cuda::GemmShape& s :
       {cuda::GemmShape{4, 4, 4}, {64, 36, 132}, {128, 256, 4608}, {500, 12, 288}}) {
    const std::vector<int8_t> a = RandomCodes(s.m * s.k, seed++);
    ExpectExact(a, RandomCodes(s.n * s.k, seed++), s);
  }
}

TEST_F(CudaGemmS8Test, TheExtremeCodesSumExactly) {
  const cuda::GemmShape s{32, 32, 8192};
  ExpectExact(std::vector<int8_t>(s.m * s.k, -128), std::vector<int8_t>(s.n * s.k, -128), s);
}

TEST_F(CudaGemmS8Test, RefusesAShapeTheTensorCoresCannotTake) {
  EXPECT_EQ(gemm_->Run({.m = 4, .n = 6, .k = 4}, nullptr, nullptr, nullptr, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

#else

TEST(CudaGemmS8Test, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (no /usr/local/cuda/bin/nvcc): the int8 GEMM is not compiled";
}

#endif

}  // namespace
}  // namespace muppet
