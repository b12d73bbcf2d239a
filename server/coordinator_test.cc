// The coordinator's logic driven directly, with a fake clock: leases, lost workers and
// placement, without gRPC and without sleeping.
#include "server/coordinator.h"

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muppet::server {
namespace {

constexpr absl::Duration kLease = absl::Seconds(15);

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/coordinator-",
                       ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".db");
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((db_ + suffix).c_str());
    Open();
  }

  // A coordinator on the test's database, as after a restart of muppetd.
  void Open() {
    coordinator_.reset();
    auto store = Store::Open(db_, Durability::kProcessCrash);
    ASSERT_TRUE(store.ok()) << store.status();
    auto coordinator = Coordinator::Create(
        *std::move(store),
        {.heartbeat_interval = absl::Seconds(2),
         .lease = kLease,
         .on_rendezvous_end = [this](const std::string& prefix) { ended_.push_back(prefix); },
         .clock = &clock_},
        &metrics_, &log_);
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

  // A MUPPET job (a window of one policy epoch, so that the policy decides every epoch).
  v1::Job Submit(uint32_t workers, std::optional<uint32_t> max_restarts = std::nullopt) {
    v1::SubmitJobRequest request;
    v1::JobSpec& spec = *request.mutable_spec();
    spec.mutable_model()->set_name("lenet5");
    spec.mutable_dataset()->set_name("fashion-mnist");
    spec.set_batch_size(64);
    spec.set_epochs(20);
    spec.mutable_optimizer()->set_learning_rate(0.05);
    spec.mutable_resources()->set_workers(workers);
    spec.mutable_precision()->set_resolution_epochs(1);
    if (max_restarts) spec.set_max_restarts(*max_restarts);
    auto job = coordinator_->SubmitJob(request, "alice");
    EXPECT_TRUE(job.ok()) << job.status();
    return *job;
  }

  // Rank 0's report of policy epoch `epoch` at the precision the coordinator last decided, with
  // one tensor's gradient statistics.
  absl::StatusOr<v1::ReportEpochResponse> Report(const std::string& worker_id,
                                                 const std::string& job_id, uint32_t attempt,
                                                 uint32_t epoch, double squared_norm,
                                                 double window_sum_squared_norm) {
    v1::ReportEpochRequest request;
    request.set_worker_id(worker_id);
    request.set_job_id(job_id);
    request.set_attempt(attempt);
    request.set_epoch(epoch);
    request.set_precision_bits(Get(job_id).progress().precision_bits());
    request.mutable_metrics()->set_train_loss(2.0 / (epoch + 1));
    v1::TensorGradientStatistics& g = *request.add_gradients();
    g.set_name("conv1.weight");
    g.set_elements(150);
    g.set_squared_norm(squared_norm);
    g.set_window_sum_squared_norm(window_sum_squared_norm);
    return coordinator_->ReportEpoch(request);
  }

  absl::Status Checkpoint(const std::string& worker_id, const std::string& job_id, uint32_t attempt,
                          uint32_t epoch) {
    v1::ReportCheckpointRequest request;
    request.set_worker_id(worker_id);
    request.set_job_id(job_id);
    request.set_attempt(attempt);
    v1::CheckpointInfo& c = *request.mutable_checkpoint();
    c.set_epoch(epoch);
    c.set_policy_epoch(epoch);
    c.set_precision_bits(Get(job_id).progress().precision_bits());
    c.set_path(absl::StrCat("/ckpt/", job_id, "/checkpoint-", epoch, ".muppet"));
    c.set_size_bytes(1000 + epoch);
    c.set_crc32c(epoch);
    return coordinator_->ReportCheckpoint(request);
  }

  absl::StatusOr<v1::BeginAttemptResponse> Begin(const std::string& worker_id,
                                                 const std::string& job_id, uint32_t attempt,
                                                 std::optional<uint32_t> resume_epoch) {
    v1::BeginAttemptRequest request;
    request.set_worker_id(worker_id);
    request.set_job_id(job_id);
    request.set_attempt(attempt);
    if (resume_epoch) request.set_resume_epoch(*resume_epoch);
    return coordinator_->BeginAttempt(request);
  }

  absl::Status Fail(const std::string& worker_id, const std::string& job_id, uint32_t attempt,
                    bool permanent) {
    v1::ReportResultRequest request;
    request.set_worker_id(worker_id);
    request.set_job_id(job_id);
    request.set_attempt(attempt);
    request.set_error("rank 0: out of luck");
    request.set_permanent(permanent);
    return coordinator_->ReportResult(request);
  }

  v1::Job Get(const std::string& job_id) { return *coordinator_->GetJob(job_id); }

  v1::WorkerState StateOf(const std::string& worker_id) {
    const v1::ListWorkersResponse listed = *coordinator_->ListWorkers({});
    for (const v1::WorkerInfo& w : listed.workers()) {
      if (w.worker_id() == worker_id) return w.state();
    }
    ADD_FAILURE() << "no worker " << worker_id;
    return v1::WORKER_STATE_UNSPECIFIED;
  }

  std::string db_;
  std::vector<std::string> ended_;  // Rendezvous prefixes whose placement ended, in order.
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
  // No other worker: the job waits in the queue for its restart.
  const v1::Job lost = Get(job.id());
  EXPECT_EQ(lost.state(), v1::JOB_STATE_QUEUED);
  EXPECT_TRUE(lost.worker_ids().empty());
  ASSERT_EQ(lost.attempts_size(), 1);
  EXPECT_EQ(lost.attempts(0).end_reason(),
            absl::StrCat("worker host-a (", worker, ") lost: no heartbeat for 15.5 s"));
  // The attempt's times come from the same clock.
  EXPECT_EQ(lost.attempts(0).end_time().seconds(), absl::ToUnixSeconds(clock_.Now()));
  // The job waits for its next attempt: the ended one can report nothing more.
  const absl::Status late = Fail(worker, job.id(), 1, false);
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(late.message().find("attempt 1 is over"), std::string::npos) << late;
  // A lost worker's heartbeat is refused; it must register again.
  EXPECT_FALSE(Heartbeat(worker).ok());
}

TEST_F(CoordinatorTest, AGangWaitsForEnoughWorkersAndALostMemberFailsItAndFreesTheRest) {
  const std::string a = Register("host-a");
  const v1::Job gang = Submit(2, /*max_restarts=*/0);
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
  // The worker restarted: its old registration's job is placed again, on the new one.
  const std::string second = Register("host-a");
  EXPECT_NE(second, first);
  EXPECT_EQ(StateOf(first), v1::WORKER_STATE_LOST);
  const v1::Job again = Get(job.id());
  EXPECT_EQ(again.state(), v1::JOB_STATE_SCHEDULED);
  ASSERT_EQ(again.attempts_size(), 2);
  EXPECT_EQ(again.attempts(1).worker_ids(0), second);
  EXPECT_EQ(Submit(1).state(), v1::JOB_STATE_QUEUED);  // Its one slot is taken.
}

// Gradients whose diversity falls from the first epoch on: the policy counts violations and
// climbs, so that its state changes with every report.
constexpr double kWindowSums[] = {1, 4, 9, 9, 9, 9, 9, 9};

TEST_F(CoordinatorTest, ALostWorkersJobResumesElsewhereFromItsCheckpointWithThePolicyAsItWas) {
  const std::string a = Register("host-a");
  const v1::Job job = Submit(1);
  ASSERT_TRUE(Heartbeat(a).ok());
  std::vector<v1::ReportEpochResponse> first;
  for (uint32_t e = 0; e < 6; ++e) {
    auto r = Report(a, job.id(), 1, e, 1, kWindowSums[e]);
    ASSERT_TRUE(r.ok()) << r.status();
    first.push_back(*r);
    if (e == 1) {
      ASSERT_TRUE(Checkpoint(a, job.id(), 1, 2).ok());
    }
  }
  // The policy climbed after the checkpoint: the restart must take that back.
  ASSERT_GE(Get(job.id()).progress().switch_epochs_size(), 1);
  ASSERT_GT(Get(job.id()).progress().switch_epochs(0), 2u);
  const std::string b = Register("host-b");

  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(Heartbeat(b).ok());
  clock_.Advance(absl::Seconds(6));
  coordinator_->ExpireLeases();
  v1::Job moved = Get(job.id());
  ASSERT_EQ(moved.state(), v1::JOB_STATE_SCHEDULED);
  ASSERT_EQ(moved.attempts_size(), 2);
  EXPECT_EQ(moved.worker_ids(0), b);
  EXPECT_EQ(moved.progress().last_checkpoint().epoch(), 2u);

  // Attempt 2 must say where it resumes before it reports; attempt 1 is over.
  EXPECT_EQ(Report(b, job.id(), 2, 2, 1, 9).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Report(a, job.id(), 1, 6, 1, 9).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Begin(b, job.id(), 2, 5).status().code(), absl::StatusCode::kInvalidArgument);
  auto begun = Begin(b, job.id(), 2, 2);
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->start_precision_bits(), first[1].next_precision_bits());
  Open();  // The coordinator restarts while the attempt resumes: the store has it all.
  ASSERT_TRUE(Heartbeat(b).ok());
  auto again = Begin(b, job.id(), 2, 2);  // A retry.
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->start_precision_bits(), begun->start_precision_bits());
  moved = Get(job.id());
  EXPECT_EQ(moved.progress().epochs_completed(), 2u);
  EXPECT_TRUE(moved.progress().switch_epochs().empty());
  EXPECT_EQ(moved.attempts(1).resumed_from().epoch(), 2u);

  // The same gradients again: the same decisions, switch included, none counted twice.
  for (uint32_t e = 2; e < 6; ++e) {
    auto r = Report(b, job.id(), 2, e, 1, kWindowSums[e]);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->SerializeAsString(), first[e].SerializeAsString()) << "policy epoch " << e;
  }
  const v1::Job done = Get(job.id());
  EXPECT_EQ(done.progress().epochs_completed(), 6u);
  EXPECT_EQ(done.progress().switch_epochs_size(), 1);
}

TEST_F(CoordinatorTest, RestartsEndAtMaxRestartsWithEveryAttemptRecorded) {
  const std::string a = Register("host-a");
  const v1::Job job = Submit(1, /*max_restarts=*/1);
  ASSERT_TRUE(Heartbeat(a).ok());
  // A failure that a restart may mend: placed again, here (the only worker).
  ASSERT_TRUE(Fail(a, job.id(), 1, false).ok());
  v1::Job j = Get(job.id());
  ASSERT_EQ(j.state(), v1::JOB_STATE_SCHEDULED);
  ASSERT_EQ(j.attempts_size(), 2);
  EXPECT_EQ(j.attempts(0).end_reason(), "worker host-a: rank 0: out of luck");
  // A retry of attempt 1's report cannot end attempt 2.
  EXPECT_EQ(Fail(a, job.id(), 1, false).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Get(job.id()).attempts_size(), 2);
  // From the beginning: no checkpoint was recorded.
  auto begun = Begin(a, job.id(), 2, std::nullopt);
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(begun->start_precision_bits(), 8u);
  ASSERT_TRUE(Fail(a, job.id(), 2, false).ok());
  j = Get(job.id());
  EXPECT_EQ(j.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(j.reason(), "worker host-a: rank 0: out of luck (attempt 2; all 1 restarts used)");
  ASSERT_EQ(j.attempts_size(), 2);
  EXPECT_TRUE(j.attempts(1).has_end_time());
}

TEST_F(CoordinatorTest, APermanentFailureIsNotRestarted) {
  const std::string a = Register("host-a");
  const v1::Job job = Submit(1);
  ASSERT_TRUE(Fail(a, job.id(), 1, true).ok());
  const v1::Job j = Get(job.id());
  EXPECT_EQ(j.state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(j.reason(), "worker host-a: rank 0: out of luck");
  EXPECT_EQ(j.attempts_size(), 1);
}

TEST_F(CoordinatorTest, ACheckpointMustComeFromTheCurrentAttemptAtThePolicysEpoch) {
  const std::string a = Register("host-a");
  const v1::Job job = Submit(1);
  ASSERT_TRUE(Report(a, job.id(), 1, 0, 1, 1).ok());
  // One policy epoch decided: a checkpoint claiming two is refused, naming the field.
  const absl::Status ahead = Checkpoint(a, job.id(), 1, 2);
  EXPECT_EQ(ahead.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(ahead.message().find("checkpoint.policy_epoch"), std::string::npos) << ahead;
  EXPECT_EQ(Checkpoint(a, job.id(), 2, 1).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Checkpoint(a, job.id(), 1, 1).ok());
  ASSERT_TRUE(Checkpoint(a, job.id(), 1, 1).ok());  // A retry: one event.
  const auto events = coordinator_->WaitForEvents(job.id(), 1, absl::ZeroDuration());
  ASSERT_TRUE(events.ok());
  int checkpoints = 0;
  for (const v1::JobEvent& e : events->events) checkpoints += e.has_checkpoint();
  EXPECT_EQ(checkpoints, 1);
}

TEST_F(CoordinatorTest, RendezvousScopeIsTheCurrentPlacementAndEndsWithIt) {
  const std::string w1 = Register("w1");
  const std::string w2 = Register("w2");
  auto prefix_of = [&](const std::string& worker) {
    const auto stream = coordinator_->OpenAssignmentStream(worker);
    EXPECT_TRUE(stream.ok());
    const auto events = coordinator_->NextAssignments(worker, *stream, absl::ZeroDuration());
    EXPECT_TRUE(events.ok() && !events->empty());
    return events->back().assign().rendezvous_prefix();
  };
  const v1::Job job = Submit(1);
  const std::string worker = Get(job.id()).worker_ids(0);
  const std::string other = worker == w1 ? w2 : w1;
  const std::string first = prefix_of(worker);
  EXPECT_EQ(*coordinator_->RendezvousScope(worker, first + "gloo/0"), first);
  EXPECT_EQ(coordinator_->RendezvousScope(other, first + "gloo/0").status().code(),
            absl::StatusCode::kPermissionDenied);  // Not placed on the other worker.
  EXPECT_EQ(coordinator_->RendezvousScope(worker, "jobs/" + job.id() + "/").status().code(),
            absl::StatusCode::kPermissionDenied);  // Above the placement's prefix.
  EXPECT_TRUE(ended_.empty());

  // A failed attempt ends the placement: its keys go, and the next placement has new ones.
  ASSERT_TRUE(Fail(worker, job.id(), 1, /*permanent=*/false).ok());
  ASSERT_EQ(ended_, std::vector<std::string>{first});
  const std::string placed_on = Get(job.id()).worker_ids(0);
  const std::string second = prefix_of(placed_on);
  EXPECT_NE(second, first);
  EXPECT_EQ(coordinator_->RendezvousScope(placed_on, first + "gloo/0").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(coordinator_->RendezvousScope(placed_on, second + "gloo/0").ok());

  v1::CancelJobRequest cancel;
  cancel.set_job_id(job.id());
  ASSERT_TRUE(coordinator_->CancelJob(cancel).ok());
  EXPECT_EQ(ended_, (std::vector<std::string>{first, second}));
  EXPECT_EQ(coordinator_->RendezvousScope(placed_on, second + "gloo/0").status().code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace muppet::server
