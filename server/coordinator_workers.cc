#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "proto/spec_validation.h"
#include "server/coordinator.h"
#include "server/coordinator_internal.h"
#include "server/worker_checks.h"

// Coordinator: the WorkerService side.
namespace muppet::server {
namespace {

constexpr size_t kMaxWorkerName = 253;

}  // namespace

absl::StatusOr<Coordinator::WorkerEntry*> Coordinator::ActiveWorker(const std::string& worker_id) {
  if (absl::Status s = RequireId("worker_id", worker_id); !s.ok()) return s;
  const auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.info.state() != v1::WORKER_STATE_ACTIVE) {
    return absl::NotFoundError(
        absl::StrCat("worker ", worker_id, " is not registered (or was lost); register again"));
  }
  return &it->second;
}

absl::StatusOr<v1::RegisterWorkerResponse> Coordinator::RegisterWorker(
    const v1::RegisterWorkerRequest& request) {
  if (!IsToken(request.worker_name(), kMaxWorkerName, "._-")) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker_name: must be 1 to 253 characters from [A-Za-z0-9._-], got \"",
                     request.worker_name(), "\""));
  }
  if (absl::Status s = CheckDeclaration(request); !s.ok()) return s;
  if (absl::Status s = ValidateLabels(request.labels()); !s.ok()) return s;

  absl::MutexLock lock(&mu_);
  Change change;
  for (const auto& [id, entry] : workers_) {
    if (entry.info.worker_name() == request.worker_name() &&
        entry.info.state() == v1::WORKER_STATE_ACTIVE) {
      StageWorker(change, id).set_state(v1::WORKER_STATE_LOST);
      FailJobsOn(change, id,
                 absl::StrCat("worker ", request.worker_name(), " (", id,
                              ") registered again (restarted) while the job ran on it"));
    }
  }
  std::string id;
  do {
    id = RandomId("wrk-");
  } while (workers_.count(id) != 0);
  v1::WorkerInfo& info = change.workers[id];
  info.set_worker_id(id);
  info.set_worker_name(request.worker_name());
  info.set_state(v1::WORKER_STATE_ACTIVE);
  *info.mutable_devices() = request.devices();
  *info.mutable_cpu() = request.cpu();
  info.set_version(request.version());
  *info.mutable_labels() = request.labels();
  const absl::Time now = options_.clock->Now();
  SetTime(*info.mutable_register_time(), now);
  SetTime(*info.mutable_last_heartbeat_time(), now);
  Schedule(change);
  if (absl::Status s = Apply(change); !s.ok()) return s;
  workers_[id].last_heartbeat = now;

  v1::RegisterWorkerResponse response;
  response.set_worker_id(id);
  const auto to_duration = [](absl::Duration d, google::protobuf::Duration& out) {
    out.set_seconds(absl::ToInt64Seconds(d));
    out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d) % 1000000000));
  };
  to_duration(options_.heartbeat_interval, *response.mutable_heartbeat_interval());
  to_duration(options_.lease, *response.mutable_lease());
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> Coordinator::Heartbeat(const v1::HeartbeatRequest& request) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<WorkerEntry*> worker = ActiveWorker(request.worker_id());
  if (!worker.ok()) return worker.status();
  (*worker)->last_heartbeat = options_.clock->Now();
  v1::HeartbeatResponse response;
  Change change;
  for (const std::string& job_id : request.running_job_ids()) {
    const auto it = jobs_.find(job_id);
    const v1::Job* j = it == jobs_.end() ? nullptr : &it->second.record.job();
    if (j == nullptr || IsFinal(j->state()) ||
        std::find(j->worker_ids().begin(), j->worker_ids().end(), request.worker_id()) ==
            j->worker_ids().end()) {
      response.add_cancel_job_ids(job_id);
      continue;
    }
    if (it->second.record.acknowledged()) continue;
    StoredJob& job = Stage(change, job_id);
    job.record.set_acknowledged(true);
    if (j->state() == v1::JOB_STATE_SCHEDULED) {
      Transition(change, job, v1::JOB_STATE_RUNNING, "");
    }
  }
  if (absl::Status s = Apply(change); !s.ok()) return s;
  return response;
}

namespace {

// The answer to a report that needs no decision, if any: stop (the job failed or was
// cancelled), or for a retry the decision already made. FAILED_PRECONDITION when the caller is
// not the running attempt's rank 0.
absl::StatusOr<std::optional<v1::ReportEpochResponse>> AnswerWithoutDeciding(
    const v1::ReportEpochRequest& request, const internal::JobRecord& record) {
  const v1::Job& j = record.job();
  if (absl::Status s = CheckAttempt(j, request.attempt()); !s.ok()) return s;
  if (j.state() == v1::JOB_STATE_CANCELLED || j.state() == v1::JOB_STATE_FAILED) {
    v1::ReportEpochResponse stop;
    stop.set_next_precision_bits(request.precision_bits());
    stop.set_stop(true);
    return stop;
  }
  if (absl::Status s = CheckRankZero(record, request.worker_id(), request.attempt(), true);
      !s.ok()) {
    return s;
  }
  if (record.has_last_report() && record.last_report_epoch() == request.epoch()) {
    return record.last_report();
  }
  return std::nullopt;
}

// What `policy` is to observe; INVALID_ARGUMENT for a report out of order, at another
// precision, or with a gradient of no elements.
absl::StatusOr<scheduler::PolicyEpoch> ObservedEpoch(const v1::ReportEpochRequest& request,
                                                     const scheduler::PrecisionPolicy& policy) {
  if (request.epoch() != policy.next_epoch()) {
    return absl::InvalidArgumentError(absl::StrCat("epoch: expected ", policy.next_epoch(),
                                                   " (reports arrive in order), got ",
                                                   request.epoch()));
  }
  const uint32_t bits = static_cast<uint32_t>(policy.precision_bits());
  if (request.precision_bits() != bits) {
    return absl::InvalidArgumentError(absl::StrCat("precision_bits: epoch ", request.epoch(),
                                                   " was to train at ", bits, " bits, got ",
                                                   request.precision_bits()));
  }
  scheduler::PolicyEpoch observed{.epoch = request.epoch()};
  for (int i = 0; i < request.gradients_size(); ++i) {
    const v1::TensorGradientStatistics& g = request.gradients(i);
    if (g.elements() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("gradients[", i, "].elements: must be at least 1, got 0"));
    }
    observed.gradients.push_back({.name = g.name(),
                                  .squared_norm = g.squared_norm(),
                                  .window_sum_squared_norm = g.window_sum_squared_norm(),
                                  .elements = static_cast<int64_t>(g.elements())});
  }
  return observed;
}

v1::ReportEpochResponse ToResponse(const scheduler::Decision& decision) {
  v1::ReportEpochResponse response;
  response.set_next_precision_bits(static_cast<uint32_t>(decision.next_precision_bits));
  response.set_switched(decision.switched);
  response.set_window_closed(decision.window_closed);
  *response.mutable_diagnostics() = ToProto(decision.diagnostics);
  return response;
}

}  // namespace

absl::StatusOr<v1::ReportEpochResponse> Coordinator::ReportEpoch(
    const v1::ReportEpochRequest& request) {
  if (absl::Status s = CheckEpochMetrics(request.metrics()); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  absl::StatusOr<const StoredJob*> found = WorkerCallJob(request.worker_id(), request.job_id());
  if (!found.ok()) return found.status();
  const StoredJob& stored = **found;
  absl::StatusOr<std::optional<v1::ReportEpochResponse>> early =
      AnswerWithoutDeciding(request, stored.record);
  if (!early.ok()) return early.status();
  if (early->has_value()) return **early;

  const std::string job_id = stored.record.job().id();
  scheduler::PrecisionPolicy& policy = *policies_.at(job_id);
  absl::StatusOr<scheduler::PolicyEpoch> observed = ObservedEpoch(request, policy);
  if (!observed.ok()) return observed.status();
  const uint32_t bits = static_cast<uint32_t>(policy.precision_bits());
  const std::string state_before = stored.policy_state;
  absl::StatusOr<scheduler::Decision> decision = policy.Observe(*observed);
  if (!decision.ok()) return decision.status();
  const v1::ReportEpochResponse response = ToResponse(*decision);

  Change change;
  const v1::EpochReport report = StageReport(change, request, bits, policy, response);
  if (absl::Status s = Apply(change); !s.ok()) {
    // The policy moved but nothing was stored: put it back as the store has it.
    policies_[job_id] = *scheduler::RestorePolicy(state_before);
    return s;
  }
  metrics_->ObserveEpoch(request.job_id(), report);
  if (decision->switched) {
    metrics_->ObserveSwitch(request.job_id(), bits, response.next_precision_bits());
  }
  return response;
}

v1::EpochReport Coordinator::StageReport(Change& change, const v1::ReportEpochRequest& request,
                                         uint32_t bits, const scheduler::PrecisionPolicy& policy,
                                         const v1::ReportEpochResponse& response) {
  StoredJob& job = Stage(change, request.job_id());
  job.policy_state = policy.SerializeState();
  job.record.set_last_report_epoch(request.epoch());
  *job.record.mutable_last_report() = response;
  job.record.set_acknowledged(true);
  if (job.record.job().state() == v1::JOB_STATE_SCHEDULED) {
    Transition(change, job, v1::JOB_STATE_RUNNING, "");
  }
  // A copy: adding the switch event below may move the events.
  v1::EpochReport report;
  report.set_epoch(request.epoch());
  report.set_precision_bits(bits);
  *report.mutable_metrics() = request.metrics();
  *report.mutable_diagnostics() = response.diagnostics();
  *AddEvent(change, job).mutable_epoch() = report;
  v1::JobProgress& progress = *job.record.mutable_job()->mutable_progress();
  progress.set_epochs_completed(request.epoch() + 1);
  progress.set_precision_bits(response.next_precision_bits());
  if (request.metrics().has_train_loss()) progress.set_train_loss(request.metrics().train_loss());
  if (request.metrics().has_test_accuracy()) {
    progress.set_test_accuracy(request.metrics().test_accuracy());
  }
  if (response.switched()) {
    progress.add_switch_epochs(request.epoch() + 1);
    v1::PrecisionSwitch& s = *AddEvent(change, job).mutable_precision_switch();
    s.set_epoch(request.epoch() + 1);
    s.set_from_bits(bits);
    s.set_to_bits(response.next_precision_bits());
    *s.mutable_diagnostics() = response.diagnostics();
  }
  return report;
}

absl::StatusOr<const StoredJob*> Coordinator::WorkerCallJob(const std::string& worker_id,
                                                            const std::string& job_id) {
  if (absl::Status s = RequireId("worker_id", worker_id); !s.ok()) return s;
  if (absl::Status s = RequireId("job_id", job_id); !s.ok()) return s;
  const auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return MissingJob(job_id);
  return &it->second;
}

absl::StatusOr<v1::AdoptLadderResponse> Coordinator::AdoptLadder(
    const v1::AdoptLadderRequest& request) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<const StoredJob*> found = WorkerCallJob(request.worker_id(), request.job_id());
  if (!found.ok()) return found.status();
  const StoredJob& stored = **found;
  const v1::Job& j = stored.record.job();
  if (absl::Status s = CheckRankZero(stored.record, request.worker_id(), request.attempt(), true);
      !s.ok()) {
    return s;
  }
  const std::vector<int> ladder(request.choice().ladder().begin(), request.choice().ladder().end());
  absl::StatusOr<v1::PrecisionPolicySpec> measured =
      scheduler::MeasuredLadderSpec(j.spec().precision(), ladder);
  if (!measured.ok()) {
    return j.spec().precision().auto_ladder()
               ? absl::InvalidArgumentError(absl::StrCat("choice.", measured.status().message()))
               : absl::FailedPreconditionError(absl::StrCat(
                     "job ", j.id(), ": its precision policy does not ask for the auto ladder"));
  }
  absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
      scheduler::MakePolicy(*measured);
  if (!policy.ok()) return policy.status();
  v1::AdoptLadderResponse response;
  response.set_start_precision_bits(static_cast<uint32_t>((*policy)->precision_bits()));
  const std::string current = policies_.at(j.id())->SerializeState();
  if (current == (*policy)->SerializeState()) return response;  // A retry.
  // Only the submitted policy, untouched, may be replaced: once, before any report.
  absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> submitted =
      scheduler::MakePolicy(j.spec().precision());
  if (!submitted.ok()) return submitted.status();
  if (current != (*submitted)->SerializeState()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", j.id(), ": the ladder is adopted once, before the first policy epoch report"));
  }
  Change change;
  StoredJob& job = Stage(change, j.id());
  job.policy_state = (*policy)->SerializeState();
  job.record.mutable_job()->mutable_progress()->set_precision_bits(response.start_precision_bits());
  *AddEvent(change, job).mutable_ladder_choice() = request.choice();
  if (absl::Status s = Apply(change); !s.ok()) return s;
  policies_[request.job_id()] = *std::move(policy);  // Not j: Apply replaced the cached job.
  return response;
}

absl::Status Coordinator::ReportResult(const v1::ReportResultRequest& request) {
  if (request.succeeded() && !request.has_result()) {
    return absl::InvalidArgumentError("result: required when succeeded is true");
  }
  if (!request.succeeded() && request.error().empty()) {
    return absl::InvalidArgumentError("error: required when succeeded is false");
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<const StoredJob*> found = WorkerCallJob(request.worker_id(), request.job_id());
  if (!found.ok()) return found.status();
  const StoredJob& stored = **found;
  const v1::Job& j = stored.record.job();
  if (absl::Status s = CheckAttempt(j, request.attempt()); !s.ok()) return s;
  if (std::find(j.worker_ids().begin(), j.worker_ids().end(), request.worker_id()) ==
      j.worker_ids().end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", j.id(), " is not placed on worker ", request.worker_id()));
  }
  if (IsFinal(j.state())) {
    // A retried report, or a failure report after a cancellation: nothing left to do.
    if (request.succeeded() == (j.state() == v1::JOB_STATE_SUCCEEDED)) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("job ", j.id(), " already ended (", StateName(j.state()), ")"));
  }
  if (request.succeeded()) {
    if (absl::Status s = CheckSuccess(request.result(), j); !s.ok()) return s;
  }
  Change change;
  StoredJob& job = Stage(change, j.id());
  if (job.record.job().state() == v1::JOB_STATE_SCHEDULED) {
    Transition(change, job, v1::JOB_STATE_RUNNING, "");
  }
  if (request.succeeded()) {
    *job.record.mutable_job()->mutable_result() = request.result();
    // The final evaluation comes after the last policy epoch's report.
    job.record.mutable_job()->mutable_progress()->set_test_accuracy(
        request.result().test_accuracy());
    Transition(change, job, v1::JOB_STATE_SUCCEEDED, "");
  } else {
    const std::string name = workers_.count(request.worker_id()) != 0
                                 ? workers_.at(request.worker_id()).info.worker_name()
                                 : request.worker_id();
    EndAttempt(change, job, absl::StrCat("worker ", name, ": ", request.error()),
               request.permanent());
  }
  Schedule(change);
  return Apply(change);
}

absl::StatusOr<uint64_t> Coordinator::OpenAssignmentStream(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<WorkerEntry*> worker = ActiveWorker(worker_id);
  if (!worker.ok()) return worker.status();
  WorkerEntry& entry = **worker;
  ++entry.stream_generation;
  entry.outbox.clear();
  std::vector<const StoredJob*> waiting;
  for (const std::string& id : placed_) {
    const StoredJob& job = jobs_.at(id);
    if (job.record.job().state() == v1::JOB_STATE_SCHEDULED && !job.record.acknowledged()) {
      waiting.push_back(&job);
    }
  }
  std::sort(waiting.begin(), waiting.end(), [](const StoredJob* a, const StoredJob* b) {
    return a->record.submit_sequence() < b->record.submit_sequence();
  });
  for (const StoredJob* job_ptr : waiting) {
    const StoredJob& job = *job_ptr;
    const v1::Job& j = job.record.job();
    for (int i = 0; i < j.worker_ids_size(); ++i) {
      if (j.worker_ids(i) != worker_id) continue;
      v1::AssignmentEvent event;
      *event.mutable_assign() = MakeAssignment(job, i);
      entry.outbox.push_back(std::move(event));
    }
  }
  changed_.SignalAll();  // Ends the stream this one replaces.
  return entry.stream_generation;
}

absl::StatusOr<std::vector<v1::AssignmentEvent>> Coordinator::NextAssignments(
    const std::string& worker_id, uint64_t generation, absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  absl::MutexLock lock(&mu_);
  while (true) {
    if (shut_down_) return absl::UnavailableError("the coordinator is shutting down");
    const auto it = workers_.find(worker_id);
    if (it == workers_.end() || it->second.info.state() != v1::WORKER_STATE_ACTIVE ||
        it->second.stream_generation != generation) {
      return absl::CancelledError(
          "a newer assignment stream replaced this one, or the worker "
          "was lost");
    }
    if (!it->second.outbox.empty()) {
      std::vector<v1::AssignmentEvent> events(std::make_move_iterator(it->second.outbox.begin()),
                                              std::make_move_iterator(it->second.outbox.end()));
      it->second.outbox.clear();
      return events;
    }
    if (changed_.WaitWithDeadline(&mu_, deadline)) return std::vector<v1::AssignmentEvent>();
  }
}

}  // namespace muppet::server

namespace muppet::server {

absl::StatusOr<std::string> Coordinator::RendezvousScope(const std::string& worker_id,
                                                         const std::string& key) {
  if (absl::Status s = RequireId("worker_id", worker_id); !s.ok()) return s;
  // Keys are "jobs/<job id>/<placement>/...": the job's placement says the rest.
  constexpr absl::string_view kJobs = "jobs/";
  const size_t end = key.find('/', kJobs.size());
  if (!absl::StartsWith(key, kJobs) || end == std::string::npos) {
    return absl::PermissionDeniedError(absl::StrCat(
        "key: rendezvous keys lie under an assignment's rendezvous_prefix (jobs/<job>/...), got \"",
        absl::CEscape(key.substr(0, 64)), "\""));
  }
  const std::string job_id = key.substr(kJobs.size(), end - kJobs.size());
  absl::MutexLock lock(&mu_);
  const auto it = jobs_.find(job_id);
  const v1::Job* j = it == jobs_.end() ? nullptr : &it->second.record.job();
  if (j == nullptr || !IsPlaced(j->state()) ||
      std::find(j->worker_ids().begin(), j->worker_ids().end(), worker_id) ==
          j->worker_ids().end()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "key: job ", job_id.substr(0, 64), " is not placed on worker ", worker_id, " now"));
  }
  const std::string& prefix = it->second.record.rendezvous_prefix();
  if (key.compare(0, prefix.size(), prefix) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "key: must lie under ", prefix, ", the prefix of job ", job_id, "'s current placement"));
  }
  return prefix;
}

}  // namespace muppet::server
