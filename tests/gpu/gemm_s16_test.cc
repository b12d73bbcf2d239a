// The byte-split int16 GEMM (kernels/cuda/gemm_s16.h) against an exact CPU reference, on the
// device: every int64 sum equal, for 14- and 16-bit codes, shapes from the smallest to a
// convolution's, the extreme codes, and a K longer than one chunk. Skips, saying why, without
// CUDA or a GPU.
#include <random>
#include <vector>

#include "gtest/gtest.h"

#if MUPPET_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm_s16.h"
#endif

namespace muppet {
namespace {

#if MUPPET_WITH_CUDA

// C (m x n) = A (m x k) * B (n x k)^T, exactly.
std::vector<int64_t> Reference(const std::vector<int16_t>& a, const std::vector<int16_t>& b,
                               const cuda::GemmShape& s) {
  std::vector<int64_t> c(s.m * s.n);
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      int64_t sum = 0;
      for (int64_t p = 0; p < s.k; ++p) sum += int64_t{a[i * s.k + p]} * b[j * s.k + p];
      c[i * s.n + j] = sum;
    }
  }
  return c;
}

class CudaGemmS16Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CountDevices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    auto gemm = cuda::GemmS16::Create();
    ASSERT_TRUE(gemm.ok()) << gemm.status();
    gemm_.emplace(*std::move(gemm));
  }

  void ExpectExact(const std::vector<int16_t>& a, const std::vector<int16_t>& b,
                   const cuda::GemmShape& s) {
    absl::StatusOr<cuda::DeviceBuffer<int16_t>> da = cuda::DeviceBuffer<int16_t>::CopyOf(a);
    absl::StatusOr<cuda::DeviceBuffer<int16_t>> db = cuda::DeviceBuffer<int16_t>::CopyOf(b);
    absl::StatusOr<cuda::DeviceBuffer<int64_t>> dc =
        cuda::DeviceBuffer<int64_t>::Allocate(s.m * s.n);
    ASSERT_TRUE(da.ok() && db.ok() && dc.ok());
    const absl::Status run = gemm_->Run(s, da->data(), db->data(), dc->data(), nullptr);
    ASSERT_TRUE(run.ok()) << run;
    absl::StatusOr<std::vector<int64_t>> c = dc->ToHost();
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(*c, Reference(a, b, s)) << s.m << "x" << s.n << "x" << s.k;
  }

  std::optional<cuda::GemmS16> gemm_;
};

std::vector<int16_t> RandomCodes(int64_t n, int bits, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
  std::vector<int16_t> v(n);
  for (int16_t& x : v) x = static_cast<int16_t>(code(rng));
  return v;
}

TEST_F(CudaGemmS16Test, EverySumIsExact) {
  uint32_t seed = 1;
  for (int bits : {14, 16}) {
    for (const cuda::GemmShape& s :
         {cuda::GemmShape{4, 4, 4}, {64, 36, 132}, {500, 12, 288}, {128, 256, 4608}}) {
      const std::vector<int16_t> a = RandomCodes(s.m * s.k, bits, seed++);
      ExpectExact(a, RandomCodes(s.n * s.k, bits, seed++), s);
    }
  }
}

TEST_F(CudaGemmS16Test, TheExtremeCodesOverSeveralChunksSumExactly) {
  // Past two chunks of K (ExactKChunks: 131056 terms each), every byte product at its largest.
  const cuda::GemmShape s{8, 4, 2 * 131056 + 20};
  for (const auto& [ca, cb] : {std::pair<int16_t, int16_t>{INT16_MIN, INT16_MIN},
                               {INT16_MAX, INT16_MAX},
                               {INT16_MIN, INT16_MAX}}) {
    ExpectExact(std::vector<int16_t>(s.m * s.k, ca), std::vector<int16_t>(s.n * s.k, cb), s);
  }
  ExpectExact(RandomCodes(s.m * s.k, 16, 7), RandomCodes(s.n * s.k, 16, 8), s);
}

TEST_F(CudaGemmS16Test, RefusesAShapeTheTensorCoresCannotTake) {
  EXPECT_EQ(gemm_->Run({.m = 4, .n = 6, .k = 4}, nullptr, nullptr, nullptr, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

#else

TEST(CudaGemmS16Test, SkippedWithoutCuda) {
  GTEST_SKIP()
      << "built without CUDA (no /usr/local/cuda/bin/nvcc): the int16 GEMM is not compiled";
}

#endif

}  // namespace
}  // namespace muppet
