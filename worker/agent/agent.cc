#include "worker/agent/agent.h"

#include <omp.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/cpu.h"
#include "proto/version.h"
#include "worker/agent/attempt_start.h"
#include "worker/agent/devices.h"
#include "worker/agent/job_log.h"
#include "worker/agent/remote_controller.h"
#include "worker/train/run.h"

namespace muppet {

namespace {

AgentOptions WithChannel(AgentOptions options) {
  options.retry.channel = CoordinatorChannel(options.server, options.retry.tls);
  return options;
}

}  // namespace

Agent::Agent(const AgentOptions& options, Logger* log)
    : options_(WithChannel(options)),
      log_(log),
      threads_per_slot_(std::max(
          1, (options.threads > 0 ? options.threads : UsableCores()) / std::max(1, options.slots))),
      stub_(v1::WorkerService::NewStub(options_.retry.channel)) {}

Agent::~Agent() {
  Stop();
  AwaitJobs();
}

void Agent::Stop() {
  if (stop_.exchange(true)) return;
  log_->Info("stopping");
  CancelAll("the worker is shutting down");
  absl::MutexLock lock(&mu_);
  if (stream_ != nullptr) stream_->TryCancel();
  wake_heartbeat_.SignalAll();
}

absl::Status Agent::Run() {
  while (!stop_) {
    absl::StatusOr<std::string> worker_id = Register();
    if (!worker_id.ok()) {
      if (stop_) break;
      return worker_id.status();
    }
    Session(*worker_id);
  }
  // Wait for the jobs to report how they ended.
  AwaitJobs();
  return absl::OkStatus();
}

absl::StatusOr<std::string> Agent::Register() {
  v1::RegisterWorkerRequest request;
  request.set_worker_name(options_.worker_name);
  std::string why_no_gpu;
  *request.mutable_cpu() = DetectCpu();
  for (v1::Device& d : DetectDevices(request.cpu(), options_.slots, &why_no_gpu)) {
    *request.add_devices() = std::move(d);
  }
  request.set_version(kVersion);
  for (const auto& [k, v] : options_.labels) (*request.mutable_labels())[k] = v;

  Backoff backoff = options_.retry.NewBackoff();
  while (!stop_) {
    v1::RegisterWorkerResponse response;
    const absl::Status s =
        FromGrpc(stub_->RegisterWorker(options_.retry.Context().get(), request, &response));
    if (s.ok()) {
      const absl::Duration interval = absl::Seconds(response.heartbeat_interval().seconds()) +
                                      absl::Nanoseconds(response.heartbeat_interval().nanos());
      absl::MutexLock lock(&mu_);
      heartbeat_interval_ = interval > absl::ZeroDuration() ? interval : absl::Seconds(2);
      log_->Info("registered", {{"worker", response.worker_id()},
                                {"name", options_.worker_name},
                                {"cpu_slots", absl::StrCat(options_.slots)},
                                {"threads_per_slot", absl::StrCat(threads_per_slot_)},
                                {"gpus", absl::StrCat(request.devices_size() - options_.slots)},
                                {"no_gpu_because", why_no_gpu}});
      return response.worker_id();
    }
    if (!IsTransient(s)) {
      return absl::Status(s.code(), absl::StrCat("the coordinator at ", options_.server,
                                                 " rejected the registration: ", s.message()));
    }
    log_->Warn("coordinator_unavailable",
               {{"server", options_.server},
                {"error", std::string(s.message())},
                {"retry_in_seconds", absl::StrCat(absl::ToDoubleSeconds(backoff.current()))}});
    SleepUnlessStopped(backoff.Next(), &stop_);
    ReconnectNow(options_.retry);
  }
  return absl::CancelledError("stopped");
}

void Agent::Session(const std::string& worker_id) {
  std::atomic<bool> session_over{false};
  std::thread heartbeat([&] { HeartbeatLoop(worker_id, session_over); });
  Backoff backoff = options_.retry.NewBackoff();
  while (!stop_ && !session_over) {
    // No deadline: the stream lives as long as the session.
    const std::unique_ptr<grpc::ClientContext> ctx =
        CallContext(options_.retry.token, std::nullopt);
    {
      absl::MutexLock lock(&mu_);
      if (stop_ || session_over) break;
      stream_ = ctx.get();
    }
    v1::StreamAssignmentsRequest request;
    request.set_worker_id(worker_id);
    std::unique_ptr<grpc::ClientReader<v1::AssignmentEvent>> reader =
        stub_->StreamAssignments(ctx.get(), request);
    v1::AssignmentEvent event;
    while (reader->Read(&event)) {
      backoff.Reset();
      if (event.has_assign()) StartJob(event.assign(), worker_id);
      if (event.has_cancel()) {
        CancelJob(event.cancel().job_id(), event.cancel().reason(), event.cancel().attempt());
      }
      Reap();
    }
    const absl::Status s = FromGrpc(reader->Finish());
    {
      absl::MutexLock lock(&mu_);
      stream_ = nullptr;
    }
    if (stop_ || session_over) break;
    if (s.code() == absl::StatusCode::kNotFound) {
      session_over = true;
      break;
    }
    log_->Warn("assignment_stream_ended",
               {{"error", std::string(s.message())},
                {"retry_in_seconds", absl::StrCat(absl::ToDoubleSeconds(backoff.current()))}});
    SleepUnlessStopped(backoff.Next(), &stop_);
    ReconnectNow(options_.retry);
  }
  session_over = true;
  {
    absl::MutexLock lock(&mu_);
    wake_heartbeat_.SignalAll();
  }
  heartbeat.join();
  if (!stop_) {
    // The coordinator failed this registration's jobs when it lost the worker.
    CancelAll("the coordinator lost this worker");
    AwaitJobs();
    log_->Warn("registering_again", {{"old_worker", worker_id}});
  }
}

void Agent::HeartbeatLoop(const std::string& worker_id, std::atomic<bool>& session_over) {
  bool warned = false;
  while (!stop_ && !session_over) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time until = absl::Now() + heartbeat_interval_;
      while (!heartbeat_now_ && !stop_ && !session_over) {
        if (wake_heartbeat_.WaitWithDeadline(&mu_, until)) break;
      }
      heartbeat_now_ = false;
    }
    if (stop_ || session_over) break;
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id);
    for (const std::string& id : RunningJobIds()) request.add_running_job_ids(id);
    v1::HeartbeatResponse response;
    const absl::Status s =
        FromGrpc(stub_->Heartbeat(options_.retry.Context().get(), request, &response));
    if (s.code() == absl::StatusCode::kNotFound) {
      log_->Warn("worker_forgotten", {{"worker", worker_id}, {"error", std::string(s.message())}});
      session_over = true;
      absl::MutexLock lock(&mu_);
      if (stream_ != nullptr) stream_->TryCancel();
      break;
    }
    if (!s.ok()) {
      if (!warned) log_->Warn("heartbeat_failed", {{"error", std::string(s.message())}});
      warned = true;
      continue;
    }
    warned = false;
    for (const std::string& id : response.cancel_job_ids()) {
      CancelJob(id, "the coordinator no longer runs this job here");
    }
  }
}

std::vector<std::string> Agent::RunningJobIds() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& [key, run] : jobs_) {
    if (!run->done && std::find(ids.begin(), ids.end(), key.first) == ids.end()) {
      ids.push_back(key.first);
    }
  }
  return ids;
}

namespace {

bool OnCuda(const v1::Assignment& a) {
  return a.spec().resources().device_kind() == v1::DEVICE_KIND_CUDA;
}

int SlotsOf(const v1::Assignment& a) {
  return OnCuda(a) ? 0 : std::max<int>(1, static_cast<int>(a.local_ranks()));
}

}  // namespace

void Agent::StartJob(const v1::Assignment& assignment, const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  const JobKey key{assignment.job_id(), assignment.attempt()};
  // Sent again after a reconnect.
  if (jobs_.count(key) != 0 || FindPending(key) != pending_.end()) return;
  pending_.push_back({.assignment = assignment, .worker_id = worker_id});
  StartPending();
  if (!pending_.empty()) {
    log_->Info("job_waiting_for_slots", {{"job", pending_.back().assignment.job_id()},
                                         {"busy_slots", absl::StrCat(BusySlots())},
                                         {"slots", absl::StrCat(options_.slots)}});
  }
}

std::deque<Agent::PendingJob>::iterator Agent::FindPending(const JobKey& key) {
  return std::find_if(pending_.begin(), pending_.end(), [&](const PendingJob& p) {
    return JobKey{p.assignment.job_id(), p.assignment.attempt()} == key;
  });
}

int Agent::BusySlots() const {
  int busy = 0;
  for (const auto& [id, run] : jobs_) {
    if (!run->done) busy += run->slots;
  }
  return busy;
}

void Agent::StartPending() {
  while (!pending_.empty() && !stop_ &&
         BusySlots() + SlotsOf(pending_.front().assignment) <= options_.slots) {
    Launch(pending_.front().assignment, pending_.front().worker_id);
    pending_.pop_front();
  }
}

void Agent::Launch(const v1::Assignment& assignment, const std::string& worker_id) {
  auto run = std::make_unique<JobRun>();
  run->job_id = assignment.job_id();
  run->attempt = assignment.attempt();
  run->slots = SlotsOf(assignment);
  if (OnCuda(assignment)) {
    // The coordinator places no more CUDA jobs here than the worker has GPUs free: take the
    // lowest one no running job holds.
    const auto held = [&](int gpu) {
      return std::any_of(jobs_.begin(), jobs_.end(), [&](const auto& job) {
        return !job.second->done && job.second->gpu == gpu;
      });
    };
    run->gpu = 0;
    while (held(run->gpu)) ++run->gpu;
  }
  JobRun* raw = run.get();
  jobs_[{assignment.job_id(), assignment.attempt()}] = std::move(run);
  raw->thread =
      std::thread([this, raw, assignment, worker_id] { RunJob(raw, assignment, worker_id); });
  // Acknowledge at once: the next heartbeat lists the job, which moves it to RUNNING.
  heartbeat_now_ = true;
  wake_heartbeat_.SignalAll();
}

void Agent::CancelJob(const std::string& job_id, const std::string& reason, uint32_t attempt) {
  const auto covered = [&](const std::string& id, uint32_t a) {
    return id == job_id && (attempt == 0 || a <= attempt);
  };
  absl::MutexLock lock(&mu_);
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (!covered(p->assignment.job_id(), p->assignment.attempt())) {
      ++p;
      continue;
    }
    log_->Info("job_dropped", {{"job", job_id},  // Never started.
                               {"attempt", absl::StrCat(p->assignment.attempt())},
                               {"reason", reason}});
    p = pending_.erase(p);
  }
  for (auto& [key, run] : jobs_) {
    if (!covered(key.first, key.second) || run->done || run->cancel) continue;
    run->cancel_reason = reason;
    run->cancel = true;
    log_->Info("job_cancelling",
               {{"job", job_id}, {"attempt", absl::StrCat(key.second)}, {"reason", reason}});
  }
}

void Agent::CancelAll(const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    pending_.clear();  // Never started: the coordinator fails or requeues them.
  }
  for (const std::string& id : RunningJobIds()) CancelJob(id, reason);
}

void Agent::AwaitJobs() {
  while (!RunningJobIds().empty()) absl::SleepFor(absl::Milliseconds(50));
  Reap();
}

void Agent::Reap() {
  std::vector<std::unique_ptr<JobRun>> finished;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (it->second->done) {
        finished.push_back(std::move(it->second));
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& run : finished) run->thread.join();
}

void Agent::RunJob(JobRun* run, v1::Assignment assignment, std::string worker_id) {
  const v1::JobSpec& spec = assignment.spec();
  log_->Info("job_started", {{"job", run->job_id},
                             {"model", spec.model().name()},
                             {"dataset", spec.dataset().name()},
                             {"epochs", absl::StrCat(spec.epochs())},
                             {"attempt", absl::StrCat(assignment.attempt())},
                             {"start_bits", absl::StrCat(assignment.start_precision_bits())},
                             {"world_size", absl::StrCat(assignment.world_size())},
                             {"local_ranks", absl::StrCat(assignment.local_ranks())},
                             {"threads", absl::StrCat(threads_per_slot_)}});
  v1::ReportResultRequest request;
  if (OnCuda(assignment) && (assignment.world_size() > 1 || assignment.local_ranks() > 1)) {
    // Every worker of this version would say the same.
    request = Failure(
        "resources: CUDA jobs train on one GPU for now (devices_per_worker 1, one worker); "
        "data-parallel ranks over NCCL are planned");
    request.set_permanent(true);
  } else if (assignment.world_size() > 1) {
    request = TrainInRankProcesses(run, assignment, worker_id);
  } else {
    request = TrainHere(run, assignment, worker_id);
  }
  request.set_worker_id(worker_id);
  request.set_job_id(run->job_id);
  request.set_attempt(assignment.attempt());
  // Rank 0's worker: the job needs its checkpoints no more (those of failed attempts included).
  if (request.succeeded() && assignment.first_rank() == 0) RemoveCheckpoints(run->job_id);
  ReportEnd(run, request);
}

v1::ReportResultRequest Agent::Failure(std::string error) {
  v1::ReportResultRequest request;
  request.set_succeeded(false);
  request.set_error(std::move(error));
  return request;
}

v1::ReportResultRequest Agent::TrainHere(JobRun* run, const v1::Assignment& assignment,
                                         const std::string& worker_id) {
  const v1::JobSpec& spec = assignment.spec();
  const uint32_t threads = spec.resources().cpu_threads_per_rank();
  omp_set_num_threads(threads > 0 ? static_cast<int>(threads) : threads_per_slot_);
  RemotePrecisionController controller(
      *stub_, options_.retry, worker_id, run->job_id, assignment.attempt(), spec.precision(),
      static_cast<int>(assignment.start_precision_bits()), run->cancel);
  JobLog observer(log_, run->job_id, controller);
  const absl::StatusOr<RunResult> result =
      TrainAttempt(assignment, controller, &observer,
                   {.cancel = &run->cancel,
                    .checkpoint_dir = CheckpointDir(assignment),
                    .checkpoint_keep = options_.checkpoint_keep,
                    .cuda_device = std::max(run->gpu, 0)},
                   *log_);
  if (result.ok()) {
    v1::ReportResultRequest request;
    request.set_succeeded(true);
    *request.mutable_result() = ToJobResult(*result);
    return request;
  }
  if (result.status().code() == absl::StatusCode::kCancelled) {
    return Failure(CancelledError(run, result.status().message()));
  }
  v1::ReportResultRequest request = Failure(std::string(result.status().message()));
  request.set_permanent(IsPermanentFailure(result.status()));
  return request;
}

std::string Agent::CheckpointDir(const v1::Assignment& assignment) const {
  if (options_.checkpoint_dir.empty()) return "";
  return absl::StrCat(JobCheckpointDir(assignment.job_id()), "/attempt-", assignment.attempt());
}

std::string Agent::JobCheckpointDir(const std::string& job_id) const {
  return absl::StrCat(options_.checkpoint_dir, "/", job_id);
}

void Agent::RemoveCheckpoints(const std::string& job_id) {
  if (options_.checkpoint_dir.empty()) return;
  std::error_code error;
  const std::string dir = JobCheckpointDir(job_id);
  std::filesystem::remove_all(dir, error);
  log_->Info("checkpoints_removed",
             {{"job", job_id}, {"dir", dir}, {"error", error ? error.message() : ""}});
}

std::string Agent::CancelledError(JobRun* run, absl::string_view fallback) {
  absl::MutexLock lock(&mu_);
  return absl::StrCat("cancelled: ", run->cancel_reason.empty() ? fallback : run->cancel_reason);
}

void Agent::ReportEnd(JobRun* run, const v1::ReportResultRequest& request) {
  // While stopping, one try: the coordinator learns of the end by the lease otherwise.
  RetryPolicy retry = options_.retry;
  if (stop_) retry.give_up_after = absl::ZeroDuration();
  v1::ReportResultResponse response;
  const absl::Status s = CallWithRetry(retry, nullptr, [&] {
    return FromGrpc(stub_->ReportResult(retry.Context().get(), request, &response));
  });
  log_->Info(
      "job_finished",
      {{"job", run->job_id},
       {"succeeded", request.succeeded() ? "true" : "false"},
       {"error", request.error()},
       {"test_accuracy",
        request.succeeded() ? absl::StrFormat("%.4f", request.result().test_accuracy()) : ""},
       {"reported", s.ok() ? "true" : std::string(s.message())}});
  absl::MutexLock lock(&mu_);
  run->done = true;
  StartPending();  // Its slots are free now.
}

}  // namespace muppet
