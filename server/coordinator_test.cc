// The coordinator's logic driven directly, with a fake clock: leases, lost workers and
// placement, without gRPC and without sleeping.
#include "server/coordinator.h"

#include <cstdio>
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muppet::server {
namespace {

constexpr absl::Duration kLease = absl::Seconds(15);

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string db =
        absl::StrCat(std::getenv("TEST_TMPDIR"), "/coordinator-",
                     ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((db + suffix).c_str());
    auto store = Store::Open(db, Durability::kProcessCrash);
    ASSERT_TRUE(store.ok()) << store.status();
    auto coordinator = Coordinator::Create(
        *std::move(store),
        {.heartbeat_interval = absl::Seconds(2), .lease = kLease, .clock = &clock_}, &metrics_,
        &log_);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
  }

  std::string Register(const std::string& name) {
    v1::RegisterWorkerRequest request;
    request.set_worker_name(name);
    v1::Device& d = *request.add_devices();
    d.set_kind(v1::DEVICE_KIND_CPU);
    auto response = coordinator_->RegisterWorker(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response->worker_id();
  }

  absl::Status Heartbeat(const std::string& worker_id) {
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id);
    return coordinator_->Heartbeat(request).status();
  }

  v1::Job Submit(uint32_t workers) {
    v1::SubmitJobRequest request;
    v1::JobSpec& spec = *request.mutable_spec();
    spec.mutable_model()->set_name("lenet5");
    spec.mutable_dataset()->set_name("fashion-mnist");
    spec.set_batch_size(64);
    spec.set_epochs(2);
    spec.mutable_optimizer()->set_learning_rate(0.05);
    spec.mutable_resources()->set_workers(workers);
    auto job = coordinator_->SubmitJob(request);
    EXPECT_TRUE(job.ok()) << job.status();
    return *job;
  }

  v1::Job Get(const std::string& job_id) { return *coordinator_->GetJob(job_id); }

  v1::WorkerState StateOf(const std::string& worker_id) {
    const v1::ListWorkersResponse listed = coordinator_->ListWorkers();
    for (const v1::WorkerInfo& w : listed.workers()) {
      if (w.worker_id() == worker_id) return w.state();
    }
    ADD_FAILURE() << "no worker " << worker_id;
    return v1::WORKER_STATE_UNSPECIFIED;
  }

  FakeClock clock_;
  Metrics metrics_{"test"};
  Logger log_{stderr};
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CoordinatorTest, ALeaseRunsOutOnTheClockAndRenewsWithEachHeartbeat) {
  const std::string worker = Register("host-a");
  const v1::Job job = Submit(1);
  ASSERT_EQ(Get(job.id()).state(), v1::JOB_STATE_SCHEDULED);

  clock_.Advance(kLease);  // Silent for exactly the lease: not yet lost.
  coordinator_->ExpireLeases();
  EXPECT_EQ(StateOf(worker), v1::WORKER_STATE_ACTIVE);
  ASSERT_TRUE(Heartbeat(worker).ok());
  clock_.Advance(kLease - absl::Seconds(1));
  coordinator_->ExpireLeases();
  EXPECT_EQ(StateOf(worker), v1::WORKER_STATE_ACTIVE);
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_STATE_SCHEDULED);

  clock_.Advance(absl::Milliseconds(1500));  // 15.5 s since the heartbeat.
  coordinator_->ExpireLeases();
  EXPECT_EQ(StateOf(worker), v1::WORKER_STATE_LOST);
  const v1::Job failed = Get(job.id());
  EXPECT_EQ(failed.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed.reason(),
            absl::StrCat("worker host-a (", worker, ") lost: no heartbeat for 15.5 s"));
  // The job's times come from the same clock.
  EXPECT_EQ(failed.end_time().seconds(), absl::ToUnixSeconds(clock_.Now()));
  // A lost worker's heartbeat is refused; it must register again.
  EXPECT_FALSE(Heartbeat(worker).ok());
}

TEST_F(CoordinatorTest, AGangWaitsForEnoughWorkersAndALostMemberFailsItAndFreesTheRest) {
  const std::string a = Register("host-a");
  const v1::Job gang = Submit(2);
  EXPECT_EQ(Get(gang.id()).state(), v1::JOB_STATE_QUEUED);
  const std::string b = Register("host-b");
  const v1::Job placed = Get(gang.id());
  ASSERT_EQ(placed.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(std::set<std::string>(placed.worker_ids().begin(), placed.worker_ids().end()),
            (std::set<std::string>{a, b}));

  // A job queued behind it waits for a free worker.
  const v1::Job next = Submit(1);
  EXPECT_EQ(Get(next.id()).state(), v1::JOB_STATE_QUEUED);
  // host-b goes silent: the gang fails (all its workers are needed), which frees host-a, and the
  // queued job is placed there at once.
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(Heartbeat(a).ok());
  clock_.Advance(absl::Seconds(6));
  coordinator_->ExpireLeases();
  EXPECT_EQ(StateOf(b), v1::WORKER_STATE_LOST);
  EXPECT_EQ(StateOf(a), v1::WORKER_STATE_ACTIVE);
  EXPECT_EQ(Get(gang.id()).state(), v1::JOB_STATE_FAILED);
  const v1::Job moved = Get(next.id());
  ASSERT_EQ(moved.state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(moved.worker_ids(0), a);
}

TEST_F(CoordinatorTest, AWorkerRegisteringAgainReplacesItsOldRegistration) {
  const std::string first = Register("host-a");
  const v1::Job job = Submit(1);
  ASSERT_EQ(Get(job.id()).state(), v1::JOB_STATE_SCHEDULED);
  // The worker restarted: its old registration's jobs fail, the new one takes new work.
  const std::string second = Register("host-a");
  EXPECT_NE(second, first);
  EXPECT_EQ(StateOf(first), v1::WORKER_STATE_LOST);
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_STATE_FAILED);
  const v1::Job next = Submit(1);
  EXPECT_EQ(Get(next.id()).worker_ids(0), second);
}

}  // namespace
}  // namespace muppet::server
