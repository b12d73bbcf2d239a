#include "scheduler/placement.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr auto kCpu = v1::DEVICE_KIND_CPU;
constexpr auto kCuda = v1::DEVICE_KIND_CUDA;

std::vector<std::string> Started(const std::vector<Placement>& placements) {
  std::vector<std::string> ids;
  for (const Placement& p : placements) ids.push_back(p.job_id);
  return ids;
}

TEST(PlaceJobsTest, HigherPriorityFirstThenFifo) {
  const std::vector<QueuedJob> queue = {
      {.job_id = "a", .priority = 0, .sequence = 1},
      {.job_id = "b", .priority = 5, .sequence = 2},
      {.job_id = "c", .priority = 0, .sequence = 0},
      {.job_id = "d", .priority = 5, .sequence = 3},
  };
  // Three free CPU slots: b and d (priority 5, in order), then c (submitted before a).
  const auto placements = PlaceJobs(queue, {{.worker_id = "w1", .free_devices = 3}});
  EXPECT_THAT(Started(placements), ElementsAre("b", "d", "c"));
  for (const Placement& p : placements) EXPECT_THAT(p.worker_ids, ElementsAre("w1"));
}

TEST(PlaceJobsTest, GangPlacementNeverStartsAJobPartly) {
  const std::vector<QueuedJob> gang = {{.job_id = "g", .workers = 3, .devices_per_worker = 2}};
  // Only two workers have two free devices: nothing starts.
  EXPECT_THAT(PlaceJobs(gang, {{.worker_id = "w1", .free_devices = 2},
                               {.worker_id = "w2", .free_devices = 4},
                               {.worker_id = "w3", .free_devices = 1}}),
              IsEmpty());
  const auto placements = PlaceJobs(gang, {{.worker_id = "w1", .free_devices = 2},
                                           {.worker_id = "w2", .free_devices = 4},
                                           {.worker_id = "w3", .free_devices = 2}});
  ASSERT_EQ(placements.size(), 1u);
  EXPECT_THAT(placements[0].worker_ids, ElementsAre("w1", "w3", "w2"));  // Best fit first.
}

TEST(PlaceJobsTest, AWaitingJobHoldsBackLaterJobsOfItsKindOnly) {
  const std::vector<QueuedJob> queue = {
      {.job_id = "big", .sequence = 0, .workers = 2},
      {.job_id = "small", .sequence = 1},
      {.job_id = "gpu", .sequence = 2, .device_kind = kCuda},
  };
  const auto placements =
      PlaceJobs(queue, {{.worker_id = "cpu1", .free_devices = 4},
                        {.worker_id = "gpu1", .device_kind = kCuda, .free_devices = 1}});
  // "big" needs two CPU workers; "small" would fit but must not overtake it; "gpu" starts.
  EXPECT_THAT(Started(placements), ElementsAre("gpu"));
}

TEST(PlaceJobsTest, CapacityIsConsumedAcrossJobs) {
  const std::vector<QueuedJob> queue = {
      {.job_id = "a", .sequence = 0, .devices_per_worker = 2},
      {.job_id = "b", .sequence = 1, .devices_per_worker = 2},
      {.job_id = "c", .sequence = 2, .devices_per_worker = 2},
  };
  const auto placements = PlaceJobs(
      queue, {{.worker_id = "w1", .free_devices = 3}, {.worker_id = "w2", .free_devices = 2}});
  ASSERT_EQ(placements.size(), 2u);
  EXPECT_THAT(placements[0].worker_ids, ElementsAre("w2"));  // Best fit: the smaller worker.
  EXPECT_THAT(placements[1].worker_ids, ElementsAre("w1"));
  EXPECT_THAT(PlaceJobs(queue, {}), IsEmpty());
}

}  // namespace
}  // namespace muppet::scheduler
