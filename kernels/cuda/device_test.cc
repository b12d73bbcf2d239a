// Proves the CUDA build path: the objects link, the runtime loads, and on a machine with a GPU a
// kernel runs and matches the CPU. Without a GPU the kernel check skips and says why.
#include "kernels/cuda/device.h"

#include <random>

#include "gtest/gtest.h"
#include "kernels/cuda/smoke_kernel.h"

namespace muppet::cuda {
namespace {

TEST(CudaDeviceTest, ListsDevicesOrExplainsWhyNone) {
  std::string why_none;
  absl::StatusOr<std::vector<DeviceInfo>> devices = ListDevices(&why_none);
  ASSERT_TRUE(devices.ok()) << devices.status();
  if (devices->empty()) {
    EXPECT_FALSE(why_none.empty());
    return;
  }
  for (const DeviceInfo& d : *devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.memory_bytes, 0u);
    EXPECT_GE(d.compute_capability, 75);  // The oldest architecture the PTX targets.
  }
}

TEST(CudaDeviceTest, SaxpyMatchesCpu) {
  std::string why_none;
  absl::StatusOr<std::vector<DeviceInfo>> devices = ListDevices(&why_none);
  ASSERT_TRUE(devices.ok()) << devices.status();
  if (devices->empty()) GTEST_SKIP() << "no CUDA device on this machine: " << why_none;

  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-10.0f, 10.0f);
  const int n = 1000003;  // Not a multiple of the block size.
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = dist(rng);
    y[i] = dist(rng);
  }
  const float a = 1.75f;
  absl::StatusOr<std::vector<float>> out = Saxpy(a, x, y);
  ASSERT_TRUE(out.ok()) << out.status();
  for (int i = 0; i < n; ++i) {
    // One fused or unfused multiply-add: within an ulp or two of the float reference.
    ASSERT_NEAR((*out)[i], a * x[i] + y[i], 1e-5f * (1 + std::abs(a * x[i]) + std::abs(y[i])))
        << "at " << i;
  }
}

}  // namespace
}  // namespace muppet::cuda
