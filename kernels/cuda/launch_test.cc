// The CUDA kernels' launch geometry, on the host.
#include "kernels/cuda/launch.h"

#include "gtest/gtest.h"

namespace muppet::cuda {
namespace {

TEST(GridBlocksTest, FillsTheDeviceWithoutExceedingTheWork) {
  EXPECT_EQ(GridBlocks(0, 132), 1);
  EXPECT_EQ(GridBlocks(1, 132), 1);
  EXPECT_EQ(GridBlocks(kThreads, 132), 1);
  EXPECT_EQ(GridBlocks(kThreads + 1, 132), 2);
  EXPECT_EQ(GridBlocks(int64_t{1} << 30, 132), 132 * 8);  // Grid-strides past that.
  EXPECT_EQ(GridBlocks(int64_t{1} << 30, 0), 8);          // An unknown SM count still launches.
}

TEST(QuantizeCountersTest, OneThreadPerPhiloxCounterOfEveryStartedBlock) {
  EXPECT_EQ(QuantizeCounters(1), 16);  // A partial block still has all 16 lanes.
  EXPECT_EQ(QuantizeCounters(128), 16);
  EXPECT_EQ(QuantizeCounters(129), 32);
  EXPECT_EQ(QuantizeCounters(1 << 20), (1 << 20) / 8);
}

}  // namespace
}  // namespace muppet::cuda
