// The worker agent against an in-process coordinator over real gRPC on 127.0.0.1: it trains an
// assigned job to the end, and stops a cancelled one within an iteration.
#include "worker/agent/agent.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace muppet {
namespace {

v1::JobSpec SyntheticSpec(uint32_t epochs, uint32_t train_size) {
  v1::JobSpec spec;
  spec.mutable_model()->set_name("lenet5");
  spec.mutable_dataset()->set_name("synthetic");
  v1::SyntheticDataset& s = *spec.mutable_dataset()->mutable_synthetic();
  s.set_channels(1);
  s.set_height(28);
  s.set_width(28);
  s.set_classes(10);
  s.set_train_size(train_size);
  s.set_test_size(64);
  spec.set_batch_size(32);
  spec.set_epochs(epochs);
  spec.mutable_optimizer()->set_learning_rate(0.05);
  v1::PrecisionPolicySpec& p = *spec.mutable_precision();
  p.set_kind(v1::PrecisionPolicySpec::KIND_MUPPET);
  p.set_policy_epoch_iterations(2);
  // T(j) = 1: every drop of diversity below its maximum is a violation, so it climbs soon.
  p.set_alpha(1.0);
  p.set_beta(0.0);
  p.set_resolution_epochs(2);
  p.set_patience(1);
  return spec;
}

// One epoch of `train` + `test` synthetic colour images of `side` x `side`.
v1::JobSpec ColourSpec(uint32_t side, uint32_t train, uint32_t test) {
  v1::JobSpec spec = SyntheticSpec(1, train);
  v1::SyntheticDataset& s = *spec.mutable_dataset()->mutable_synthetic();
  s.set_channels(3);
  s.set_height(side);
  s.set_width(side);
  s.set_test_size(test);
  return spec;
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string db = std::string(std::getenv("TEST_TMPDIR")) + "/" +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    server::ServerOptions options{
        .listen = "127.0.0.1:0", .metrics_listen = "", .db_path = db + ".db"};
    auto s = server::CoordinatorServer::Start(options, &log_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    const std::string address = absl::StrCat("127.0.0.1:", server_->port());
    client_ = std::make_unique<client::Client>(client::ClientOptions{.server = address});
    checkpoint_dir_ = db + ".checkpoints";
    StartAgent();
  }

  void TearDown() override {
    StopAgent();
    server_->Shutdown(absl::Seconds(1));
  }

  // A worker named test-worker, which keeps checkpoints in checkpoint_dir_ (registering again
  // replaces an earlier one's registration).
  void StartAgent() {
    agent_ =
        std::make_unique<Agent>(AgentOptions{.server = absl::StrCat("127.0.0.1:", server_->port()),
                                             .worker_name = "test-worker",
                                             .threads = 2,
                                             .checkpoint_dir = checkpoint_dir_},
                                &log_);
    agent_thread_ = std::thread([this] { agent_status_ = agent_->Run(); });
  }

  v1::Job Interrupted(const v1::JobSpec& spec, uint32_t at,
                      const std::function<void(const v1::Job&)>& meanwhile);

  void StopAgent() {
    agent_->Stop();
    agent_thread_.join();
    EXPECT_TRUE(agent_status_.ok()) << agent_status_;
    agent_.reset();
  }

  // Polls until the job reaches a final state, or 60 s pass.
  v1::Job AwaitEnd(const std::string& job_id) {
    absl::StatusOr<v1::Job> job;
    for (int i = 0; i < 1200; ++i) {
      job = client_->GetJob(job_id);
      if (job.ok() && job->state() >= v1::JOB_STATE_SUCCEEDED) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_TRUE(job.ok());
    return *job;
  }

  Logger log_{stderr};
  std::string checkpoint_dir_;
  std::unique_ptr<server::CoordinatorServer> server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<Agent> agent_;
  std::thread agent_thread_;
  absl::Status agent_status_;
};

TEST_F(AgentTest, TrainsAnAssignedJobWithTheCoordinatorsPrecision) {
  auto job = client_->SubmitJob(SyntheticSpec(2, 320));
  ASSERT_TRUE(job.ok()) << job.status();
  const v1::Job done = AwaitEnd(job->id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.reason();
  // 320 images in batches of 32, 2 epochs, policy epochs of 2 iterations: 10 reports.
  EXPECT_EQ(done.progress().epochs_completed(), 10u);
  EXPECT_GE(done.progress().switch_epochs_size(), 1);
  EXPECT_GE(done.result().test_accuracy(), 0.0);
  // The worker trained what the coordinator decided: each report's precision is the one the
  // previous decision (or switch) set.
  uint32_t bits = 8;
  int switches = 0;
  ASSERT_TRUE(client_
                  ->WatchJob(job->id(), 0,
                             [&](const v1::JobEvent& e) {
                               if (e.has_epoch()) {
                                 EXPECT_EQ(e.epoch().precision_bits(), bits)
                                     << "policy epoch " << e.epoch().epoch();
                                 EXPECT_EQ(e.epoch().metrics().samples(), 64u);
                               }
                               if (e.has_precision_switch()) {
                                 EXPECT_EQ(e.precision_switch().from_bits(), bits);
                                 bits = e.precision_switch().to_bits();
                                 ++switches;
                               }
                               return true;
                             })
                  .ok());
  EXPECT_EQ(switches, done.progress().switch_epochs_size());
}

TEST_F(AgentTest, ACancelledJobStopsWithinAnIteration) {
  auto job = client_->SubmitJob(SyntheticSpec(1000, 3200));
  ASSERT_TRUE(job.ok());
  for (int i = 0; i < 600 && client_->GetJob(job->id())->progress().epochs_completed() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(client_->CancelJob(job->id(), "test cancel").ok());
  // The worker hears of it on its stream and stops the job within an iteration (milliseconds
  // here; the bound leaves room for a loaded machine).
  const absl::Time cancelled = absl::Now();
  while (!agent_->RunningJobIds().empty() && absl::Now() - cancelled < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(agent_->RunningJobIds().empty());
  EXPECT_LT(absl::Now() - cancelled, absl::Seconds(2));
  const v1::Job ended = *client_->GetJob(job->id());
  EXPECT_EQ(ended.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(ended.reason(), "test cancel");
  EXPECT_LT(ended.progress().epochs_completed(), 100u);
  // Another job runs on the freed slot.
  auto next = client_->SubmitJob(SyntheticSpec(1, 64));
  EXPECT_EQ(AwaitEnd(next->id()).state(), v1::JOB_STATE_SUCCEEDED);
}

// A job checkpointed every epoch, with routes that cannot differ between two runs (timed at
// first use, they could, and with them the rounding).
v1::JobSpec CheckpointedSpec() {
  v1::JobSpec spec = SyntheticSpec(6, 1600);
  spec.set_checkpoint_interval_epochs(1);
  spec.mutable_precision()->set_fixed_point_route(v1::FIXED_POINT_ROUTE_INTEGER);
  return spec;
}

// The same end as the unbroken twin: bit for bit, at the same thread count.
void ExpectSameEnd(const v1::Job& done, const v1::Job& twin) {
  EXPECT_EQ(done.result().test_accuracy(), twin.result().test_accuracy());
  EXPECT_EQ(done.result().train_loss(), twin.result().train_loss());
  EXPECT_EQ(std::vector<uint32_t>(done.progress().switch_epochs().begin(),
                                  done.progress().switch_epochs().end()),
            std::vector<uint32_t>(twin.progress().switch_epochs().begin(),
                                  twin.progress().switch_epochs().end()));
  EXPECT_EQ(done.progress().epochs_completed(), twin.progress().epochs_completed());
}

// Submits `spec`, and once it has recorded a checkpoint at epoch `at` or later, stops the worker
// (its job fails, cancelled, and is placed again on the stopped registration), runs `meanwhile`
// on the job as it then is, and starts a new worker under the same name, which replaces that
// registration: the job is placed again, here. Returns the job once it ended.
v1::Job AgentTest::Interrupted(const v1::JobSpec& spec, uint32_t at,
                               const std::function<void(const v1::Job&)>& meanwhile) {
  auto job = client_->SubmitJob(spec);
  EXPECT_TRUE(job.ok()) << job.status();
  for (int i = 0; i < 1200 && client_->GetJob(job->id())->progress().last_checkpoint().epoch() < at;
       ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(client_->GetJob(job->id())->progress().last_checkpoint().epoch(), at);
  StopAgent();
  meanwhile(*client_->GetJob(job->id()));
  StartAgent();
  return AwaitEnd(job->id());
}

// The worker stops in the middle of a job and a new one takes its name: the job resumes from
// its last checkpoint and ends exactly as the same job trained without a break, with every
// attempt recorded; its checkpoints go once it succeeded.
TEST_F(AgentTest, AJobInterruptedByItsWorkersRestartResumesFromItsCheckpointExactly) {
  const v1::Job twin = AwaitEnd(client_->SubmitJob(CheckpointedSpec())->id());
  ASSERT_EQ(twin.state(), v1::JOB_STATE_SUCCEEDED) << twin.reason();
  const v1::Job done = Interrupted(CheckpointedSpec(), 2, [](const v1::Job&) {});
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.reason();
  ASSERT_EQ(done.attempts_size(), 3);
  EXPECT_TRUE(done.attempts(2).has_resumed_from());
  EXPECT_GE(done.attempts(2).resumed_from().epoch(), 2u);
  ExpectSameEnd(done, twin);
  // The checkpoints were in each attempt's directory, as the events say.
  int recorded = 0;
  ASSERT_TRUE(client_
                  ->WatchJob(done.id(), 0,
                             [&](const v1::JobEvent& e) {
                               if (!e.has_checkpoint()) return true;
                               ++recorded;
                               EXPECT_EQ(e.checkpoint().path().rfind(absl::StrCat(
                                             checkpoint_dir_, "/", done.id(), "/attempt-",
                                             e.checkpoint().attempt(), "/checkpoint-")),
                                         0u)
                                   << e.checkpoint().path();
                               return true;
                             })
                  .ok());
  EXPECT_GE(recorded, 6);  // Every epoch of the job, some of them twice.
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat(checkpoint_dir_, "/", done.id())));
}

// The newest checkpoint is corrupt when the job restarts: it resumes from the one before, says
// why (the file and the section), and still ends as its unbroken twin.
TEST_F(AgentTest, ARestartFallsBackPastACorruptCheckpoint) {
  const v1::Job twin = AwaitEnd(client_->SubmitJob(CheckpointedSpec())->id());
  ASSERT_EQ(twin.state(), v1::JOB_STATE_SUCCEEDED) << twin.reason();
  v1::CheckpointInfo corrupted;
  const v1::Job done = Interrupted(CheckpointedSpec(), 3, [&](const v1::Job& job) {
    corrupted = job.progress().last_checkpoint();
    std::fstream f(corrupted.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(corrupted.size_bytes() / 2));
    const char byte = static_cast<char>(f.get() ^ 0x10);
    f.seekp(static_cast<std::streamoff>(corrupted.size_bytes() / 2));
    f.put(byte);
  });
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.reason();
  ASSERT_EQ(done.attempts_size(), 3);
  EXPECT_LT(done.attempts(2).resumed_from().epoch(), corrupted.epoch());
  std::vector<std::string> skipped;
  ASSERT_TRUE(client_
                  ->WatchJob(done.id(), 0,
                             [&](const v1::JobEvent& e) {
                               if (e.has_attempt_start()) {
                                 skipped.assign(e.attempt_start().skipped().begin(),
                                                e.attempt_start().skipped().end());
                               }
                               return true;
                             })
                  .ok());
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find(corrupted.path() + ": section \""), std::string::npos) << skipped[0];
  EXPECT_NE(skipped[0].find("CRC32C mismatch"), std::string::npos) << skipped[0];
  ExpectSameEnd(done, twin);
}

// The coordinator frees a cancelled job's slot at once, but the job's thread may still be
// finishing (here, making a large synthetic dataset, which no cancellation interrupts): the
// next job waits for the slot instead of sharing it.
TEST_F(AgentTest, ASlotIsNotLentTwiceWhileACancelledJobFinishes) {
  auto first = client_->SubmitJob(ColourSpec(64, 20000, 64));
  ASSERT_TRUE(first.ok()) << first.status();
  while (agent_->RunningJobIds().empty()) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(client_->CancelJob(first->id(), "make way").ok());
  auto second = client_->SubmitJob(SyntheticSpec(1, 64));
  ASSERT_TRUE(second.ok());
  size_t most = 0;
  bool first_still_running = false;
  while (client_->GetJob(second->id())->state() != v1::JOB_STATE_SUCCEEDED) {
    const std::vector<std::string> running = agent_->RunningJobIds();
    most = std::max(most, running.size());
    if (std::find(running.begin(), running.end(), first->id()) != running.end()) {
      first_still_running = true;
    }
    ASSERT_NE(client_->GetJob(second->id())->state(), v1::JOB_STATE_FAILED);
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_TRUE(first_still_running);  // The case this test is about did happen.
  EXPECT_EQ(most, 1u);
  EXPECT_EQ(client_->GetJob(first->id())->state(), v1::JOB_STATE_CANCELLED);
}

// The spec passes validation, but its dataset alone is petabytes: the job fails with the
// estimate and the limit, and the worker, which runs it in process, goes on serving.
TEST_F(AgentTest, AJobTooBigForTheWorkersMemoryFailsAndTheWorkerStaysUp) {
  auto job = client_->SubmitJob(ColourSpec(4096, 100000000, 0));
  ASSERT_TRUE(job.ok()) << job.status();
  const v1::Job ended = AwaitEnd(job->id());
  EXPECT_EQ(ended.state(), v1::JOB_STATE_FAILED);
  EXPECT_NE(ended.reason().find("needs about"), std::string::npos) << ended.reason();
  EXPECT_NE(ended.reason().find("100000000 + 0 images of 3x4096x4096"), std::string::npos)
      << ended.reason();
  EXPECT_NE(ended.reason().find("this process may use"), std::string::npos) << ended.reason();
  auto next = client_->SubmitJob(SyntheticSpec(1, 64));
  EXPECT_EQ(AwaitEnd(next->id()).state(), v1::JOB_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace muppet
