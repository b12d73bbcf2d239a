// The NCCL backend on real GPUs: one rank per device, ranks as threads of this process joined
// through an in-process store. Skips, saying why, without CUDA or without enough GPUs; the
// checks that need no GPU (bad rank, rank 0's id never published) run everywhere.
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/comm/nccl_communicator.h"

#if MUPPET_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/device.h"
#endif

namespace muppet::comm {
namespace {

using ::testing::HasSubstr;

TEST(NcclTest, RefusesARankOutsideTheJob) {
  InProcessStore store;
  absl::StatusOr<std::unique_ptr<Communicator>> c = ConnectNccl({.rank = 3, .size = 2}, store);
#if MUPPET_WITH_CUDA
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
#else
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnimplemented) << c.status();
#endif
}

#if MUPPET_WITH_CUDA
TEST(NcclTest, ARankWhoseIdNeverComesTimesOut) {
  InProcessStore store;  // Rank 0 never publishes its id.
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<Communicator>> c =
      ConnectNccl({.rank = 1, .size = 2, .connect_timeout = absl::Milliseconds(300)}, store);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDeadlineExceeded) << c.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// Sums, maxima and broadcasts on `ranks` GPUs against the host's sums of the same inputs.
TEST(NcclTest, CollectivesOnDeviceMemoryMatchTheHost) {
  std::string why;
  const int gpus = cuda::CountDevices(&why);
  if (gpus < 1) GTEST_SKIP() << "no CUDA device: " << why;
  const int ranks = std::min(gpus, 4);
  InProcessStore store;
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      ASSERT_EQ(cudaSetDevice(r), cudaSuccess);
      absl::StatusOr<std::unique_ptr<Communicator>> c =
          ConnectNccl({.rank = r, .size = ranks, .device = r}, store);
      ASSERT_TRUE(c.ok()) << c.status();
      const int n = 1 << 20;
      std::vector<int32_t> host(n);
      for (int i = 0; i < n; ++i) host[i] = (i % 1000) * (r + 1);
      int32_t* device = nullptr;
      ASSERT_EQ(cudaMalloc(&device, n * sizeof(int32_t)), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(device, host.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice),
                cudaSuccess);
      ASSERT_TRUE(
          (*c)->AllReduce(std::span<int32_t>(device, n), ReduceOp::kSum, absl::Seconds(30)).ok());
      ASSERT_EQ(cudaMemcpy(host.data(), device, n * sizeof(int32_t), cudaMemcpyDeviceToHost),
                cudaSuccess);
      const int factor = ranks * (ranks + 1) / 2;
      for (int i = 0; i < n; ++i) ASSERT_EQ(host[i], (i % 1000) * factor) << i;
      absl::StatusOr<std::vector<std::string>> all =
          (*c)->AllGather(std::string(r + 1, 'x'), absl::Seconds(30));
      ASSERT_TRUE(all.ok()) << all.status();
      for (int k = 0; k < ranks; ++k) EXPECT_EQ((*all)[k], std::string(k + 1, 'x'));
      EXPECT_TRUE((*c)->Barrier(absl::Seconds(30)).ok());
      absl::Status s = (*c)->AllReduce(std::span<int16_t>(reinterpret_cast<int16_t*>(device), 4),
                                       ReduceOp::kSum, absl::Seconds(1));
      EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
      EXPECT_THAT(s.message(), HasSubstr("nccl backend does not support"));
      cudaFree(device);
    });
  }
  for (std::thread& t : threads) t.join();
}

// The watchdog: a peer that never joins the collective makes it abort at its timeout.
TEST(NcclTest, ACollectiveAPeerNeverJoinsIsAbortedAtItsTimeout) {
  std::string why;
  if (cuda::CountDevices(&why) < 2)
    GTEST_SKIP() << "needs 2 CUDA devices: " << (why.empty() ? "fewer" : why);
  InProcessStore store;
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      ASSERT_EQ(cudaSetDevice(r), cudaSuccess);
      absl::StatusOr<std::unique_ptr<Communicator>> c =
          ConnectNccl({.rank = r, .size = 2, .device = r}, store);
      ASSERT_TRUE(c.ok()) << c.status();
      if (r == 1) {
        absl::SleepFor(absl::Seconds(3));
        return;
      }
      float* device = nullptr;
      ASSERT_EQ(cudaMalloc(&device, 1024 * sizeof(float)), cudaSuccess);
      const absl::Time start = absl::Now();
      absl::Status s = (*c)->AllReduce(std::span<float>(device, 1024), ReduceOp::kSum,
                                       absl::Milliseconds(500));
      EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
      EXPECT_LT(absl::Now() - start, absl::Seconds(3));
      EXPECT_EQ((*c)->Barrier(absl::Seconds(1)), s);  // Broken for good.
    });
  }
  for (std::thread& t : threads) t.join();
}
#endif

}  // namespace
}  // namespace muppet::comm
