// The coordinator over real gRPC on 127.0.0.1: the client library for JobService, and raw
// WorkerService calls that drive a job the way muppet-worker does.
#include "server/server.h"

#include <sqlite3.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "muppet/v1/job.grpc.pb.h"
#include "muppet/v1/rendezvous.grpc.pb.h"
#include "muppet/v1/worker.grpc.pb.h"
#include "server/test_placement.h"

namespace muppet::server {
namespace {

std::string TempDb(const std::string& name) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  return path;
}

// A job that the policy switches deterministically: ladder [8] then FP32, windows of 2 epochs,
// one violation climbs.
v1::JobSpec SwitchingSpec() {
  v1::JobSpec spec;
  spec.mutable_model()->set_name("lenet5");
  spec.mutable_dataset()->set_name("fashion-mnist");
  spec.set_batch_size(32);
  spec.set_epochs(10);
  spec.mutable_optimizer()->set_learning_rate(0.05);
  v1::PrecisionPolicySpec& p = *spec.mutable_precision();
  p.set_kind(v1::PrecisionPolicySpec::KIND_MUPPET);
  p.add_ladder(8);
  p.set_resolution_epochs(2);
  p.set_patience(1);
  return spec;
}

class ServerTest : public ::testing::Test {
 protected:
  void Start(const std::string& db, absl::Duration lease = absl::Seconds(30)) {
    ServerOptions options{.listen = "127.0.0.1:0", .metrics_listen = "127.0.0.1:0", .db_path = db};
    options.coordinator.heartbeat_interval = lease / 4;
    options.coordinator.lease = lease;
    auto server = CoordinatorServer::Start(options, &log_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    const std::string address = absl::StrCat("127.0.0.1:", server_->port());
    client_ = std::make_unique<client::Client>(client::ClientOptions{.server = address});
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    workers_ = v1::WorkerService::NewStub(channel);
    rendezvous_ = v1::RendezvousService::NewStub(channel);
  }

  std::string Register(const std::string& name, int cpus) {
    v1::RegisterWorkerRequest request;
    request.set_worker_name(name);
    for (int i = 0; i < cpus; ++i) {
      v1::Device& d = *request.add_devices();
      d.set_kind(v1::DEVICE_KIND_CPU);
      d.set_index(i);
    }
    v1::RegisterWorkerResponse response;
    grpc::ClientContext ctx;
    const grpc::Status s = workers_->RegisterWorker(&ctx, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.worker_id();
  }

  // Reads the next assignment event from a stream opened for `worker_id`.
  v1::AssignmentEvent NextAssignment(const std::string& worker_id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::StreamAssignmentsRequest request;
    request.set_worker_id(worker_id);
    auto reader = workers_->StreamAssignments(&ctx, request);
    v1::AssignmentEvent event;
    EXPECT_TRUE(reader->Read(&event));
    ctx.TryCancel();
    return event;
  }

  grpc::Status Report(const std::string& worker, const std::string& job, uint32_t epoch,
                      uint32_t bits, double squared, double window, v1::ReportEpochResponse* out) {
    v1::ReportEpochRequest request;
    request.set_worker_id(worker);
    request.set_job_id(job);
    request.set_attempt(1);
    request.set_epoch(epoch);
    request.set_precision_bits(bits);
    request.mutable_metrics()->set_train_loss(2.0 - 0.1 * epoch);
    request.mutable_metrics()->set_samples(1000);
    request.mutable_metrics()->set_seconds(0.5);
    for (const char* name : {"conv1.weight", "fc.weight"}) {
      v1::TensorGradientStatistics& g = *request.add_gradients();
      g.set_name(name);
      g.set_elements(100);
      g.set_squared_norm(squared);
      g.set_window_sum_squared_norm(window);
    }
    grpc::ClientContext ctx;
    return workers_->ReportEpoch(&ctx, request, out);
  }

  // The job's events, up to `limit`: all of a finished job's, since the watch then ends.
  std::vector<v1::JobEvent> History(const std::string& job_id, size_t limit = 100) {
    std::vector<v1::JobEvent> events;
    const absl::Status s = client_->WatchJob(job_id, 0, [&](const v1::JobEvent& e) {
      events.push_back(e);
      return events.size() < limit;
    });
    EXPECT_TRUE(s.ok()) << s;
    return events;
  }

  Logger log_{stderr};
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
  std::unique_ptr<v1::RendezvousService::Stub> rendezvous_;
};

TEST_F(ServerTest, SubmitGetListAndBadInput) {
  Start(TempDb("submit.db"));
  auto job = client_->SubmitJob(SwitchingSpec(), "req-1");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(job->id().size(), 4u + 16u);
  EXPECT_EQ(job->spec().optimizer().momentum(), 0.9);  // Defaults are stored explicitly.
  EXPECT_EQ(job->progress().precision_bits(), 8u);

  // The same request id returns the same job; with another spec it is ALREADY_EXISTS.
  EXPECT_EQ(client_->SubmitJob(SwitchingSpec(), "req-1")->id(), job->id());
  v1::JobSpec other = SwitchingSpec();
  other.set_epochs(11);
  EXPECT_EQ(client_->SubmitJob(other, "req-1").status().code(), absl::StatusCode::kAlreadyExists);

  EXPECT_EQ(client_->GetJob(job->id())->id(), job->id());
  EXPECT_EQ(client_->GetJob("job-0000000000000000").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->GetJob("").status().code(), absl::StatusCode::kInvalidArgument);
  // A long id is not echoed whole (the error would overflow gRPC's metadata).
  const absl::Status long_id = client_->GetJob(std::string(8000, 'x')).status();
  EXPECT_EQ(long_id.code(), absl::StatusCode::kNotFound) << long_id;
  EXPECT_NE(long_id.message().find("... (8000 characters) not found"), std::string::npos);

  v1::JobSpec bad = SwitchingSpec();
  bad.set_batch_size(0);
  bad.mutable_model()->set_name("vgg99");
  const absl::Status s = client_->SubmitJob(bad).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("spec.batch_size"), std::string::npos) << s;
  EXPECT_NE(s.message().find("spec.model.name"), std::string::npos) << s;

  auto second = client_->SubmitJob(SwitchingSpec());
  ASSERT_TRUE(second.ok());
  auto all = client_->ListJobs();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id(), second->id());  // Newest first.
  EXPECT_EQ(client_->ListJobs({v1::JOB_STATE_RUNNING})->size(), 0u);
  EXPECT_EQ(client_->ListJobs({}, 1)->size(), 1u);

  // Pages: newest first, a token while more remain, filters applied before paging.
  auto third = client_->SubmitJob(SwitchingSpec());
  auto stub = v1::JobService::NewStub(
      grpc::CreateChannel(client_->options().server, grpc::InsecureChannelCredentials()));
  v1::ListJobsRequest page_request;
  page_request.set_page_size(2);
  v1::ListJobsResponse page;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->ListJobs(&ctx, page_request, &page).ok());
  }
  ASSERT_EQ(page.jobs_size(), 2);
  EXPECT_EQ(page.jobs(0).id(), third->id());
  EXPECT_EQ(page.jobs(1).id(), second->id());
  ASSERT_FALSE(page.next_page_token().empty());
  page_request.set_page_token(page.next_page_token());
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->ListJobs(&ctx, page_request, &page).ok());
  }
  ASSERT_EQ(page.jobs_size(), 1);
  EXPECT_EQ(page.jobs(0).id(), job->id());
  EXPECT_TRUE(page.next_page_token().empty());
  page_request.set_page_token("not-a-token");
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(stub->ListJobs(&ctx, page_request, &page).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  // A state that is none of JobState's values (an old or a careless client) is refused, not
  // matched by no job.
  for (const int state : {0, 42}) {
    v1::ListJobsRequest bad_state;
    bad_state.add_states(v1::JOB_STATE_RUNNING);
    bad_state.add_states(static_cast<v1::JobState>(state));
    grpc::ClientContext ctx;
    const grpc::Status s = stub->ListJobs(&ctx, bad_state, &page);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), absl::StrCat("states[1]: not a job state, got ", state));
  }
  ASSERT_TRUE(client_->CancelJob(third->id()).ok());

  auto cancelled = client_->CancelJob(second->id(), "no longer needed");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(cancelled->reason(), "no longer needed");
  EXPECT_EQ(client_->CancelJob(second->id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->CancelJob("job-ffffffffffffffff").status().code(),
            absl::StatusCode::kNotFound);
}

// One violation per JobSpec field group, over the wire: INVALID_ARGUMENT naming the field.
// (proto/spec_validation_test.cc checks every rule of each group.)
TEST_F(ServerTest, EveryKindOfSpecViolationIsInvalidArgumentNamingTheField) {
  Start(TempDb("violations.db"));
  const std::vector<std::pair<std::function<void(v1::JobSpec&)>, std::string>> cases = {
      {[](v1::JobSpec& s) { s.set_name("my job"); }, "spec.name"},
      {[](v1::JobSpec& s) { s.mutable_model()->set_name("vgg99"); }, "spec.model.name"},
      {[](v1::JobSpec& s) { s.mutable_model()->set_num_classes(1); }, "spec.model.num_classes"},
      {[](v1::JobSpec& s) { s.mutable_dataset()->set_name("imagenet"); }, "spec.dataset.name"},
      {[](v1::JobSpec& s) { s.mutable_dataset()->set_data_dir("rel/dir"); },
       "spec.dataset.data_dir"},
      {[](v1::JobSpec& s) { s.set_batch_size(65537); }, "spec.batch_size"},
      {[](v1::JobSpec& s) { s.set_epochs(0); }, "spec.epochs"},
      {[](v1::JobSpec& s) { s.mutable_optimizer()->set_learning_rate(11); },
       "spec.optimizer.learning_rate"},
      {[](v1::JobSpec& s) { s.mutable_optimizer()->set_momentum(1); }, "spec.optimizer.momentum"},
      {[](v1::JobSpec& s) { s.mutable_lr_schedule()->mutable_step()->set_gamma(2); },
       "spec.lr_schedule.step.gamma"},
      {[](v1::JobSpec& s) { s.mutable_precision()->set_ladder(0, 17); },
       "spec.precision.ladder[0]"},
      {[](v1::JobSpec& s) { s.mutable_precision()->set_alpha(0); }, "spec.precision.alpha"},
      {[](v1::JobSpec& s) { s.mutable_precision()->set_patience(0); }, "spec.precision.patience"},
      {[](v1::JobSpec& s) { s.mutable_resources()->set_workers(2048); }, "spec.resources.workers"},
      {[](v1::JobSpec& s) { s.set_checkpoint_interval_epochs(11); },
       "spec.checkpoint_interval_epochs"},
      {[](v1::JobSpec& s) { s.set_priority(1001); }, "spec.priority"},
      {[](v1::JobSpec& s) { (*s.mutable_labels())["Bad Key"] = "x"; }, "spec.labels"},
  };
  for (const auto& [mutate, field] : cases) {
    v1::JobSpec spec = SwitchingSpec();
    mutate(spec);
    const absl::Status s = client_->SubmitJob(spec).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_NE(s.message().find(field + ":"), std::string::npos) << field << ": " << s;
  }
  EXPECT_TRUE(client_->ListJobs()->empty());  // Nothing invalid was stored.
  EXPECT_EQ(client_->SubmitJob(SwitchingSpec(), "bad id!").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, ReportsOutOfRangeAreRefusedAndLeaveNoTrace) {
  Start(TempDb("bad_reports.db"));
  auto job = client_->SubmitJob(SwitchingSpec());
  ASSERT_TRUE(job.ok());
  const std::string worker = Register("host-a", 1);
  ASSERT_TRUE(NextAssignment(worker).has_assign());
  const struct {
    std::function<void(v1::EpochMetrics&)> spoil;
    const char* field;
  } cases[] = {
      {[](auto& m) { m.set_train_loss(std::nan("")); }, "metrics.train_loss"},
      {[](auto& m) { m.set_test_accuracy(5.0); }, "metrics.test_accuracy"},
      {[](auto& m) { m.set_seconds(-3); }, "metrics.seconds"},
  };
  for (const auto& c : cases) {
    v1::ReportEpochRequest request;
    request.set_worker_id(worker);
    request.set_job_id(job->id());
    request.set_attempt(1);
    request.set_precision_bits(8);
    c.spoil(*request.mutable_metrics());
    v1::ReportEpochResponse reply;
    grpc::ClientContext ctx;
    const grpc::Status s = workers_->ReportEpoch(&ctx, request, &reply);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_NE(s.error_message().find(c.field), std::string::npos) << s.error_message();
  }
  const auto after = client_->GetJob(job->id());
  EXPECT_EQ(after->progress().epochs_completed(), 0u);
  EXPECT_FALSE(after->progress().has_train_loss());
  for (const v1::JobEvent& e : History(job->id(), 3)) EXPECT_FALSE(e.has_epoch());
}

TEST_F(ServerTest, WorkersDeclareBoundedDevicesAndTheListComesInPages) {
  Start(TempDb("many_workers.db"));
  auto declare = [&](const std::string& name, int devices, int name_length) {
    v1::RegisterWorkerRequest request;
    request.set_worker_name(name);
    for (int i = 0; i < devices; ++i) {
      v1::Device& d = *request.add_devices();
      d.set_kind(v1::DEVICE_KIND_CPU);
      d.set_index(i);
      d.set_name(std::string(name_length, 'c'));
    }
    v1::RegisterWorkerResponse response;
    grpc::ClientContext ctx;
    return workers_->RegisterWorker(&ctx, request, &response);
  };
  // 200,000 devices (6.7 MB) once made every later ListWorkers fail: now refused at the door.
  const grpc::Status huge = declare("huge", 200000, 0);
  EXPECT_EQ(huge.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(huge.error_message().find("devices: at most 1024, got 200000"), std::string::npos);
  // 80 workers at the bound: about 6.5 MB of worker list, more than one message may carry.
  for (int i = 0; i < 80; ++i) ASSERT_TRUE(declare(absl::StrCat("w", 100 + i), 1024, 64).ok());
  v1::ListWorkersResponse first;
  {
    grpc::ClientContext ctx;
    auto jobs = v1::JobService::NewStub(
        grpc::CreateChannel(client_->options().server, grpc::InsecureChannelCredentials()));
    ASSERT_TRUE(jobs->ListWorkers(&ctx, v1::ListWorkersRequest(), &first).ok());
  }
  EXPECT_LT(first.ByteSizeLong(), 3u << 20);
  EXPECT_FALSE(first.next_page_token().empty());
  const auto all = client_->ListWorkers();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 80u);
  for (int i = 0; i < 80; ++i) EXPECT_EQ((*all)[i].worker_name(), absl::StrCat("w", 100 + i));
}

TEST_F(ServerTest, AWorkerRunsAJobThroughAPrecisionSwitch) {
  Start(TempDb("worker.db"));
  auto job = client_->SubmitJob(SwitchingSpec());
  ASSERT_TRUE(job.ok());
  const std::string worker = Register("host-a", 1);
  const v1::AssignmentEvent assigned = NextAssignment(worker);
  ASSERT_TRUE(assigned.has_assign());
  EXPECT_EQ(assigned.assign().job_id(), job->id());
  EXPECT_EQ(assigned.assign().world_size(), 1u);
  EXPECT_EQ(assigned.assign().start_precision_bits(), 8u);
  EXPECT_EQ(client_->GetJob(job->id())->state(), v1::JOB_STATE_SCHEDULED);

  // The heartbeat that lists the job acknowledges it: RUNNING.
  v1::HeartbeatRequest beat;
  beat.set_worker_id(worker);
  beat.add_running_job_ids(job->id());
  beat.add_running_job_ids("job-0123456789abcdef");  // Unknown: the worker is told to stop it.
  v1::HeartbeatResponse beat_reply;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(workers_->Heartbeat(&ctx, beat, &beat_reply).ok());
  }
  ASSERT_EQ(beat_reply.cancel_job_ids_size(), 1);
  EXPECT_EQ(beat_reply.cancel_job_ids(0), "job-0123456789abcdef");
  EXPECT_EQ(client_->GetJob(job->id())->state(), v1::JOB_STATE_RUNNING);

  // Window 1 (epochs 0, 1): diverse gradients. Window 2 (epochs 2, 3): aligned ones, so the
  // diversity falls far below its maximum and the one violation allowed climbs to FP32.
  v1::ReportEpochResponse r;
  ASSERT_TRUE(Report(worker, job->id(), 0, 8, 1.0, 1.0, &r).ok());
  EXPECT_FALSE(r.window_closed());
  ASSERT_TRUE(Report(worker, job->id(), 1, 8, 1.0, 0.01, &r).ok());
  EXPECT_TRUE(r.window_closed());
  EXPECT_FALSE(r.switched());
  EXPECT_NEAR(r.diagnostics().diversity(), 200.0, 1e-9);
  ASSERT_TRUE(Report(worker, job->id(), 2, 8, 1.0, 1.0, &r).ok());
  ASSERT_TRUE(Report(worker, job->id(), 3, 8, 1.0, 4.0, &r).ok());
  EXPECT_TRUE(r.switched());
  EXPECT_EQ(r.next_precision_bits(), 32u);
  EXPECT_NEAR(r.diagnostics().ratio(), 400.0, 1e-9);

  // A retried report gets the same decision; a report out of order is INVALID_ARGUMENT; a
  // negative statistic too, naming the field.
  v1::ReportEpochResponse again;
  ASSERT_TRUE(Report(worker, job->id(), 3, 8, 1.0, 4.0, &again).ok());
  EXPECT_EQ(again.SerializeAsString(), r.SerializeAsString());
  EXPECT_EQ(Report(worker, job->id(), 7, 32, 1.0, 1.0, &again).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Report("wrk-0000000000000000", job->id(), 4, 32, 1, 1, &again).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(Report(worker, job->id(), 4, 32, 1.0, 1.0, &r).ok());
  EXPECT_EQ(r.next_precision_bits(), 32u);

  v1::ReportResultRequest result;
  result.set_worker_id(worker);
  result.set_job_id(job->id());
  result.set_attempt(1);
  result.set_succeeded(true);
  result.mutable_result()->set_test_accuracy(0.9);
  result.mutable_result()->add_switch_epochs(2);
  v1::ReportResultResponse result_reply;
  {
    // A success after 5 of its 10 epochs is refused, and the job runs on.
    grpc::ClientContext ctx;
    const grpc::Status early = workers_->ReportResult(&ctx, result, &result_reply);
    EXPECT_EQ(early.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(early.error_message().find("reported 5 of its 10 epochs"), std::string::npos);
    EXPECT_EQ(client_->GetJob(job->id())->state(), v1::JOB_STATE_RUNNING);
  }
  for (uint32_t epoch = 5; epoch < 10; ++epoch) {
    ASSERT_TRUE(Report(worker, job->id(), epoch, 32, 1.0, 1.0, &r).ok());
  }
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(workers_->ReportResult(&ctx, result, &result_reply).ok());
  }
  auto done = client_->GetJob(job->id());
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(done->progress().epochs_completed(), 10u);
  ASSERT_EQ(done->progress().switch_epochs_size(), 1);
  EXPECT_EQ(done->progress().switch_epochs(0), 4u);
  EXPECT_DOUBLE_EQ(done->result().test_accuracy(), 0.9);
  EXPECT_EQ(client_->CancelJob(job->id()).status().code(), absl::StatusCode::kFailedPrecondition);

  // The history: queued, scheduled, running, 10 epochs with a switch after the fourth,
  // succeeded; the watch ends by itself after the final event.
  const std::vector<v1::JobEvent> events = History(job->id());
  ASSERT_EQ(events.size(), 15u);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].sequence(), i + 1);
  EXPECT_EQ(events[0].state_change().to(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(events[1].state_change().to(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(events[2].state_change().to(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(events[3].epoch().epoch(), 0u);
  EXPECT_EQ(events[7].precision_switch().from_bits(), 8u);
  EXPECT_EQ(events[7].precision_switch().to_bits(), 32u);
  EXPECT_EQ(events[7].precision_switch().epoch(), 4u);
  EXPECT_EQ(events[8].epoch().precision_bits(), 32u);
  EXPECT_EQ(events[13].epoch().epoch(), 9u);
  EXPECT_EQ(events[14].state_change().to(), v1::JOB_STATE_SUCCEEDED);

  auto listed = client_->ListWorkers();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].worker_name(), "host-a");
  EXPECT_EQ((*listed)[0].state(), v1::WORKER_STATE_ACTIVE);
  EXPECT_EQ((*listed)[0].free_devices(), 1u);
}

TEST_F(ServerTest, RankZeroAdoptsAMeasuredLadderOnceBeforeTheFirstReport) {
  Start(TempDb("ladder.db"));
  v1::JobSpec spec = SwitchingSpec();
  spec.mutable_precision()->clear_ladder();  // The default 8, 12, 14, 16.
  spec.mutable_precision()->set_auto_ladder(true);
  auto job = client_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  auto plain = client_->SubmitJob(SwitchingSpec());
  ASSERT_TRUE(plain.ok()) << plain.status();
  const std::string worker = Register("host-a", 2);
  NextAssignment(worker);

  const auto adopt = [&](const std::string& w, const std::string& j, std::vector<uint32_t> ladder,
                         v1::AdoptLadderResponse* out) {
    v1::AdoptLadderRequest request;
    request.set_worker_id(w);
    request.set_job_id(j);
    request.set_attempt(1);
    request.mutable_choice()->set_fp32_step_seconds(0.1);
    for (uint32_t bits : {8u, 12u, 14u, 16u}) {
      v1::LadderChoice::Level& l = *request.mutable_choice()->add_levels();
      l.set_bits(bits);
      l.set_kept(std::count(ladder.begin(), ladder.end(), bits) > 0);
    }
    for (uint32_t bits : ladder) request.mutable_choice()->add_ladder(bits);
    grpc::ClientContext ctx;
    return workers_->AdoptLadder(&ctx, request, out);
  };
  v1::AdoptLadderResponse r;
  EXPECT_EQ(adopt(worker, job->id(), {10}, &r).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(adopt("wrk-0000000000000000", job->id(), {12}, &r).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(adopt(worker, plain->id(), {8}, &r).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(adopt(worker, job->id(), {12, 16}, &r).ok());
  EXPECT_EQ(r.start_precision_bits(), 12u);
  ASSERT_TRUE(adopt(worker, job->id(), {12, 16}, &r).ok());  // A retry: the same answer.
  EXPECT_EQ(r.start_precision_bits(), 12u);
  EXPECT_EQ(adopt(worker, job->id(), {8}, &r).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(client_->GetJob(job->id())->progress().precision_bits(), 12u);

  // The policy now climbs the adopted ladder: the first report must be at 12 bits.
  v1::ReportEpochResponse report;
  EXPECT_EQ(Report(worker, job->id(), 0, 8, 1, 1, &report).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Report(worker, job->id(), 0, 12, 1, 1, &report).ok());
  const std::vector<v1::JobEvent> events = History(job->id(), 3);
  ASSERT_GE(events.size(), 2u);
  EXPECT_TRUE(std::any_of(events.begin(), events.end(), [](const v1::JobEvent& e) {
    return e.has_ladder_choice() && e.ladder_choice().ladder_size() == 2;
  }));
}

TEST_F(ServerTest, GangPlacementWaitsForEnoughWorkers) {
  Start(TempDb("gang.db"));
  v1::JobSpec spec = SwitchingSpec();
  spec.mutable_resources()->set_workers(2);
  auto job = client_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  const std::string a = Register("host-a", 1);
  EXPECT_EQ(client_->GetJob(job->id())->state(), v1::JOB_STATE_QUEUED);  // No partial start.
  const std::string b = Register("host-b", 1);
  auto placed = client_->GetJob(job->id());
  EXPECT_EQ(placed->state(), v1::JOB_STATE_SCHEDULED);
  ASSERT_EQ(placed->worker_ids_size(), 2);
  const v1::AssignmentEvent first = NextAssignment(placed->worker_ids(0));
  const v1::AssignmentEvent second = NextAssignment(placed->worker_ids(1));
  EXPECT_EQ(first.assign().first_rank(), 0u);
  EXPECT_EQ(second.assign().first_rank(), 1u);
  EXPECT_EQ(second.assign().world_size(), 2u);
  EXPECT_EQ(first.assign().rendezvous_prefix(), second.assign().rendezvous_prefix());
}

TEST_F(ServerTest, ASilentWorkerIsLostAndItsJobWaitsForItsRestart) {
  Start(TempDb("lost.db"), absl::Milliseconds(600));
  auto job = client_->SubmitJob(SwitchingSpec());
  const std::string worker = Register("host-a", 1);
  ASSERT_EQ(client_->GetJob(job->id())->state(), v1::JOB_STATE_SCHEDULED);
  absl::StatusOr<v1::Job> lost;
  for (int i = 0; i < 100; ++i) {
    lost = client_->GetJob(job->id());
    if (lost->state() == v1::JOB_STATE_QUEUED) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(lost->state(), v1::JOB_STATE_QUEUED);
  ASSERT_EQ(lost->attempts_size(), 1);
  EXPECT_NE(lost->attempts(0).end_reason().find("lost: no heartbeat"), std::string::npos)
      << lost->attempts(0).end_reason();
  v1::HeartbeatRequest beat;
  beat.set_worker_id(worker);
  v1::HeartbeatResponse reply;
  grpc::ClientContext ctx;
  EXPECT_EQ(workers_->Heartbeat(&ctx, beat, &reply).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ((*client_->ListWorkers())[0].state(), v1::WORKER_STATE_LOST);
}

TEST_F(ServerTest, ARestartedCoordinatorKeepsJobsEventsAndPolicyState) {
  const std::string db = TempDb("restart.db");
  Start(db);
  auto job = client_->SubmitJob(SwitchingSpec());
  const std::string worker = Register("host-a", 1);
  v1::ReportEpochResponse r;
  ASSERT_TRUE(Report(worker, job->id(), 0, 8, 1.0, 1.0, &r).ok());
  ASSERT_TRUE(Report(worker, job->id(), 1, 8, 1.0, 0.01, &r).ok());
  ASSERT_TRUE(Report(worker, job->id(), 2, 8, 1.0, 1.0, &r).ok());
  // Queued, scheduled, running and three epochs.
  const std::vector<v1::JobEvent> before = History(job->id(), 6);
  ASSERT_EQ(before.size(), 6u);
  server_->Shutdown(absl::Seconds(1));
  server_.reset();

  Start(db);
  auto restored = client_->GetJob(job->id());
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(restored->progress().epochs_completed(), 3u);
  const std::vector<v1::JobEvent> after = History(job->id(), 6);
  ASSERT_EQ(after.size(), 6u);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].SerializeAsString(), before[i].SerializeAsString());
  }
  // The policy continues where it was: the window that epoch 2 opened closes with a switch.
  ASSERT_TRUE(Report(worker, job->id(), 3, 8, 1.0, 4.0, &r).ok());
  EXPECT_TRUE(r.switched());
  EXPECT_NEAR(r.diagnostics().ratio(), 400.0, 1e-9);
}

TEST_F(ServerTest, ASecondCoordinatorOnTheSamePortFailsToStart) {
  Start(TempDb("first.db"));
  ServerOptions options{.listen = absl::StrCat("127.0.0.1:", server_->port()),
                        .metrics_listen = "",
                        .db_path = TempDb("second.db")};
  auto second = CoordinatorServer::Start(options, &log_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("--listen"), std::string::npos) << second.status();
}

// Two coordinators on one database would hand out the same submit sequences and expire each
// other's workers, deleting acknowledged jobs: the second is refused.
TEST_F(ServerTest, ASecondCoordinatorOnTheSameDatabaseFailsToStart) {
  const std::string db = TempDb("shared.db");
  Start(db);
  ServerOptions options{.listen = "127.0.0.1:0", .metrics_listen = "", .db_path = db};
  auto second = CoordinatorServer::Start(options, &log_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(db + ": in use by another coordinator (pid"),
            std::string::npos)
      << second.status();
  // The first one still serves.
  EXPECT_TRUE(client_->SubmitJob(SwitchingSpec()).ok());
}

// A corrupt row costs its job, not the coordinator: the rest are served, and the damaged job
// is DATA_LOSS to every call that names it, its row left as it is.
TEST_F(ServerTest, ACorruptJobRowIsDataLossAndTheRestAreServed) {
  const std::string db = TempDb("damaged.db");
  Start(db);
  auto damaged = client_->SubmitJob(SwitchingSpec());
  auto healthy = client_->SubmitJob(SwitchingSpec());
  ASSERT_TRUE(damaged.ok() && healthy.ok());
  server_->Shutdown(absl::Seconds(1));
  server_.reset();
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  const std::string corrupt =
      absl::StrCat("UPDATE jobs SET record = x'ffffffff' WHERE id = '", damaged->id(), "'");
  ASSERT_EQ(sqlite3_exec(handle, corrupt.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(handle);

  Start(db);
  auto lost = client_->GetJob(damaged->id());
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(lost.status().message().find("the record of job " + damaged->id() + " is corrupt"),
            std::string::npos)
      << lost.status();
  EXPECT_EQ(client_->CancelJob(damaged->id(), "").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(client_->GetJob(healthy->id()).ok());
  // New jobs take sequences after the damaged one's, so the listing stays in order.
  auto fresh = client_->SubmitJob(SwitchingSpec());
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  auto listed = client_->ListJobs();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id(), fresh->id());
  EXPECT_EQ((*listed)[1].id(), healthy->id());
}

TEST_F(ServerTest, RendezvousSetGetWaitAddDelete) {
  Start(TempDb("rendezvous.db"));
  auto placed = PlaceTestJob(server_->coordinator());
  ASSERT_TRUE(placed.ok()) << placed.status();
  const std::string p = placed->rendezvous_prefix;
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(200));
    v1::SetRequest set;
    set.set_key(p + "addr/1");
    set.set_value("127.0.0.1:1234");
    set.set_worker_id(placed->worker_id);
    v1::SetResponse reply;
    grpc::ClientContext ctx;
    EXPECT_TRUE(rendezvous_->Set(&ctx, set, &reply).ok());
  });
  v1::GetRequest get;
  get.add_keys(p + "addr/1");
  get.set_wait(true);
  get.mutable_timeout()->set_seconds(10);
  get.set_worker_id(placed->worker_id);
  v1::GetResponse got;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(rendezvous_->Get(&ctx, get, &got).ok());
  }
  setter.join();
  EXPECT_EQ(got.values(0), "127.0.0.1:1234");
  get.set_wait(false);
  get.set_keys(0, p + "missing");
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(rendezvous_->Get(&ctx, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  v1::AddRequest add;
  add.set_key(p + "count");
  add.set_delta(3);
  add.set_worker_id(placed->worker_id);
  v1::AddResponse added;
  for (int expected : {3, 6}) {
    grpc::ClientContext ctx;
    ASSERT_TRUE(rendezvous_->Add(&ctx, add, &added).ok());
    EXPECT_EQ(added.value(), expected);
  }
  add.set_delta(INT64_MAX);  // 6 + INT64_MAX: no wrap.
  {
    grpc::ClientContext ctx;
    const grpc::Status s = rendezvous_->Add(&ctx, add, &added);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_NE(s.error_message().find("leaves the 64-bit range"), std::string::npos);
  }
  v1::DeletePrefixRequest del;
  del.set_prefix(p);
  del.set_worker_id(placed->worker_id);
  v1::DeletePrefixResponse deleted;
  grpc::ClientContext ctx;
  ASSERT_TRUE(rendezvous_->DeletePrefix(&ctx, del, &deleted).ok());
  EXPECT_EQ(deleted.deleted(), 2u);
}

TEST_F(ServerTest, RendezvousKeysStayInTheirPlacementAndWithinItsQuota) {
  Start(TempDb("rendezvous_scope.db"));
  auto placed = PlaceTestJob(server_->coordinator(), "host-a");
  ASSERT_TRUE(placed.ok()) << placed.status();
  auto set = [&](const std::string& worker, const std::string& key, size_t bytes) {
    v1::SetRequest r;
    r.set_key(key);
    r.set_value(std::string(bytes, 'v'));
    r.set_worker_id(worker);
    v1::SetResponse out;
    grpc::ClientContext ctx;
    return rendezvous_->Set(&ctx, r, &out);
  };
  const std::string p = placed->rendezvous_prefix;
  EXPECT_TRUE(set(placed->worker_id, p + "ok", 10).ok());
  // Keys of no job, of another placement of the job, or of a job not on this worker.
  const std::string other_worker = Register("host-b", 1);
  for (const auto& [worker, key] : std::vector<std::pair<std::string, std::string>>{
           {placed->worker_id, "junk/1"},
           {placed->worker_id, "jobs/job-0000000000000000/1/x"},
           {placed->worker_id, absl::StrCat("jobs/", placed->job_id, "/999/x")},
           {other_worker, p + "x"},
           {"", p + "x"}}) {
    const grpc::Status s = set(worker, key, 10);
    EXPECT_EQ(s.error_code(), worker.empty() ? grpc::StatusCode::INVALID_ARGUMENT
                                             : grpc::StatusCode::PERMISSION_DENIED)
        << key << " by " << worker << ": " << s.error_message();
  }
  // 300 values of 1 MiB once grew the coordinator by 265 MB: 16 MiB a placement now.
  int written = 0;
  grpc::Status last;
  for (int i = 0;
       i < 30 && (last = set(placed->worker_id, p + absl::StrCat("big/", i), 1 << 20)).ok(); ++i) {
    ++written;
  }
  EXPECT_EQ(written, 15);  // 15 MiB + the small key fit; the 16th MiB would pass 16 MiB.
  EXPECT_EQ(last.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(last.error_message().find("rendezvous quota of " + p), std::string::npos);
  // Replacing a key counts its new size, not both.
  EXPECT_TRUE(set(placed->worker_id, p + "big/0", 1 << 19).ok());
}

}  // namespace
}  // namespace muppet::server
