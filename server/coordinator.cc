#include "server/coordinator.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/message_differencer.h"
#include "proto/spec_validation.h"
#include "scheduler/placement.h"

namespace muppet::server {
namespace {

constexpr int kEventPage = 256;
constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;
constexpr size_t kMaxCancelReason = 1024;
constexpr size_t kMaxWorkerName = 253;

bool IsFinal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

// Holds workers' devices.
bool IsPlaced(v1::JobState state) {
  return state == v1::JOB_STATE_SCHEDULED || state == v1::JOB_STATE_RUNNING;
}

std::string StateName(v1::JobState state) {
  return absl::AsciiStrToLower(absl::string_view(v1::JobState_Name(state)).substr(10));
}

void SetTime(google::protobuf::Timestamp& t, absl::Time time) {
  const int64_t nanos = absl::ToUnixNanos(time);
  t.set_seconds(nanos / 1000000000);
  t.set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

std::string RandomId(absl::string_view prefix) {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(&mu);
  return absl::StrFormat("%s%016x", prefix, absl::Uniform<uint64_t>(*gen));
}

bool IsToken(absl::string_view s, size_t max, absl::string_view extra) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [&](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           extra.find(c) != absl::string_view::npos;
  });
}

v1::PolicyDiagnostics ToProto(const scheduler::Diagnostics& d) {
  v1::PolicyDiagnostics p;
  if (d.diversity) p.set_diversity(*d.diversity);
  if (d.ratio) p.set_ratio(*d.ratio);
  if (d.threshold) p.set_threshold(*d.threshold);
  if (d.violations) p.set_violations(static_cast<uint32_t>(*d.violations));
  p.set_skipped_tensors(static_cast<uint32_t>(d.skipped_tensors));
  return p;
}

absl::Status RequireId(absl::string_view field, const std::string& value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(
    std::unique_ptr<Store> store, const CoordinatorOptions& options, Metrics* metrics,
    Logger* log) {
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(store), options, metrics, log));
  if (absl::Status s = c->Load(); !s.ok()) return s;
  return c;
}

absl::Status Coordinator::Load() {
  absl::StatusOr<std::vector<StoredJob>> jobs = store_->LoadJobs();
  if (!jobs.ok()) return jobs.status();
  absl::StatusOr<std::vector<v1::WorkerInfo>> workers = store_->LoadWorkers();
  if (!workers.ok()) return workers.status();
  absl::MutexLock lock(&mu_);
  for (StoredJob& job : *jobs) {
    const std::string id = job.record.job().id();
    if (!IsFinal(job.record.job().state())) {
      absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
          scheduler::RestorePolicy(job.policy_state);
      if (!policy.ok()) {
        return absl::DataLossError(
            absl::StrCat("the policy state of job ", id, " is corrupt: ", policy.status().message()));
      }
      policies_[id] = *std::move(policy);
      metrics_->SetPrecision(id, job.record.job().progress().precision_bits());
    }
    jobs_by_sequence_[job.record.submit_sequence()] = id;
    if (!job.record.request_id().empty()) jobs_by_request_id_[job.record.request_id()] = id;
    last_submit_sequence_ = std::max(last_submit_sequence_, job.record.submit_sequence());
    ++state_counts_[job.record.job().state()];
    if (!IsFinal(job.record.job().state())) unfinished_.insert(id);
    if (IsPlaced(job.record.job().state())) placed_.insert(id);
    jobs_[id] = std::move(job);
  }
  const absl::Time now = absl::Now();
  for (v1::WorkerInfo& info : *workers) {
    WorkerEntry& entry = workers_[info.worker_id()];
    entry.info = std::move(info);
    entry.last_heartbeat = now;
  }
  log_->Info("store_loaded", {{"jobs", absl::StrCat(jobs_.size())},
                              {"running_policies", absl::StrCat(policies_.size())},
                              {"workers", absl::StrCat(workers_.size())}});
  Change change;
  Schedule(change);
  UpdateCountMetrics();
  return Apply(change);
}

// ---- Staging and applying changes ----

StoredJob& Coordinator::Stage(Change& change, const std::string& job_id) {
  auto it = change.jobs.find(job_id);
  if (it != change.jobs.end()) return it->second;
  return change.jobs.emplace(job_id, jobs_.at(job_id)).first->second;
}

v1::WorkerInfo& Coordinator::StageWorker(Change& change, const std::string& worker_id) {
  auto it = change.workers.find(worker_id);
  if (it != change.workers.end()) return it->second;
  return change.workers.emplace(worker_id, workers_.at(worker_id).info).first->second;
}

v1::JobEvent& Coordinator::AddEvent(Change& change, StoredJob& job) {
  v1::JobEvent& event = change.events.emplace_back();
  event.set_job_id(job.record.job().id());
  job.record.set_last_event_sequence(job.record.last_event_sequence() + 1);
  event.set_sequence(job.record.last_event_sequence());
  SetTime(*event.mutable_time(), absl::Now());
  return event;
}

void Coordinator::Transition(Change& change, StoredJob& job, v1::JobState to,
                             const std::string& reason) {
  v1::Job& j = *job.record.mutable_job();
  const v1::JobState from = j.state();
  j.set_state(to);
  // Job.reason explains an unsuccessful end; other transitions keep theirs in the event only.
  if (to == v1::JOB_STATE_FAILED || to == v1::JOB_STATE_CANCELLED) j.set_reason(reason);
  const absl::Time now = absl::Now();
  if (to == v1::JOB_STATE_RUNNING) SetTime(*j.mutable_start_time(), now);
  if (IsFinal(to)) {
    SetTime(*j.mutable_end_time(), now);
    if (to != v1::JOB_STATE_SUCCEEDED) {
      for (const std::string& worker : j.worker_ids()) {
        v1::AssignmentEvent cancel;
        cancel.mutable_cancel()->set_job_id(j.id());
        cancel.mutable_cancel()->set_reason(reason);
        change.outbox.emplace_back(worker, std::move(cancel));
      }
    }
  }
  v1::StateChange& sc = *AddEvent(change, job).mutable_state_change();
  sc.set_from(from);
  sc.set_to(to);
  sc.set_reason(reason);
}

void Coordinator::FailJobsOn(Change& change, const std::string& worker_id,
                             const std::string& reason) {
  std::vector<std::string> ids;
  for (const std::string& id : placed_) {
    if (change.jobs.count(id) != 0) continue;
    const v1::Job& j = jobs_.at(id).record.job();
    if (std::find(j.worker_ids().begin(), j.worker_ids().end(), worker_id) !=
        j.worker_ids().end()) {
      ids.push_back(id);
    }
  }
  for (auto& [id, job] : change.jobs) {
    const v1::Job& j = job.record.job();
    if (!IsFinal(j.state()) && std::find(j.worker_ids().begin(), j.worker_ids().end(),
                                         worker_id) != j.worker_ids().end()) {
      ids.push_back(id);
    }
  }
  for (const std::string& id : ids) {
    Transition(change, Stage(change, id), v1::JOB_STATE_FAILED, reason);
  }
}

std::map<std::pair<std::string, v1::DeviceKind>, uint32_t> Coordinator::UsedDevices(
    const Change& change) const {
  std::map<std::pair<std::string, v1::DeviceKind>, uint32_t> used;
  auto count = [&](const StoredJob& job) {
    const v1::Job& j = job.record.job();
    if (IsFinal(j.state())) return;
    for (const std::string& worker : j.worker_ids()) {
      used[{worker, j.spec().resources().device_kind()}] +=
          j.spec().resources().devices_per_worker();
    }
  };
  for (const std::string& id : placed_) {
    if (change.jobs.count(id) == 0) count(jobs_.at(id));
  }
  for (const auto& [id, job] : change.jobs) count(job);
  return used;
}

v1::Assignment Coordinator::MakeAssignment(const StoredJob& job, size_t worker_index) const {
  const v1::Job& j = job.record.job();
  const uint32_t per_worker = j.spec().resources().devices_per_worker();
  v1::Assignment a;
  a.set_job_id(j.id());
  *a.mutable_spec() = j.spec();
  a.set_world_size(per_worker * j.spec().resources().workers());
  a.set_first_rank(static_cast<uint32_t>(worker_index) * per_worker);
  a.set_local_ranks(per_worker);
  a.set_rendezvous_prefix(job.record.rendezvous_prefix());
  a.set_start_epoch(0);
  a.set_start_precision_bits(j.progress().precision_bits());
  return a;
}

void Coordinator::Schedule(Change& change) {
  const auto used = UsedDevices(change);
  std::vector<scheduler::WorkerCapacity> capacity;
  auto offer = [&](const v1::WorkerInfo& w) {
    if (w.state() != v1::WORKER_STATE_ACTIVE) return;
    std::map<v1::DeviceKind, uint32_t> total;
    for (const v1::Device& d : w.devices()) ++total[d.kind()];
    for (const auto& [kind, n] : total) {
      const auto it = used.find({w.worker_id(), kind});
      const uint32_t taken = it == used.end() ? 0 : it->second;
      if (n > taken) {
        capacity.push_back(
            {.worker_id = w.worker_id(), .device_kind = kind, .free_devices = n - taken});
      }
    }
  };
  for (const auto& [id, entry] : workers_) {
    if (change.workers.count(id) == 0) offer(entry.info);
  }
  for (const auto& [id, info] : change.workers) offer(info);
  if (capacity.empty()) return;  // Nothing can start: the common case of a busy cluster.

  std::vector<scheduler::QueuedJob> queue;
  auto enqueue = [&](const StoredJob& job) {
    const v1::Job& j = job.record.job();
    if (j.state() != v1::JOB_STATE_QUEUED) return;
    queue.push_back({.job_id = j.id(),
                     .priority = j.spec().priority(),
                     .sequence = job.record.submit_sequence(),
                     .workers = j.spec().resources().workers(),
                     .devices_per_worker = j.spec().resources().devices_per_worker(),
                     .device_kind = j.spec().resources().device_kind()});
  };
  for (const std::string& id : unfinished_) {
    if (change.jobs.count(id) == 0) enqueue(jobs_.at(id));
  }
  for (const auto& [id, job] : change.jobs) enqueue(job);
  if (queue.empty()) return;

  for (const scheduler::Placement& p : scheduler::PlaceJobs(queue, capacity)) {
    StoredJob& job = Stage(change, p.job_id);
    v1::Job& j = *job.record.mutable_job();
    for (const std::string& w : p.worker_ids) j.add_worker_ids(w);
    // A fresh rendezvous prefix per placement: stale keys break collective rendezvous.
    job.record.set_rendezvous_prefix(
        absl::StrCat("jobs/", j.id(), "/", job.record.last_event_sequence() + 1, "/"));
    Transition(change, job, v1::JOB_STATE_SCHEDULED,
               absl::StrCat("placed on ", absl::StrJoin(p.worker_ids, ", ")));
    for (size_t i = 0; i < p.worker_ids.size(); ++i) {
      v1::AssignmentEvent event;
      *event.mutable_assign() = MakeAssignment(job, i);
      change.outbox.emplace_back(p.worker_ids[i], std::move(event));
    }
  }
}

absl::Status Coordinator::Apply(Change& change) {
  if (change.jobs.empty() && change.events.empty() && change.workers.empty()) {
    return absl::OkStatus();
  }
  Mutation mutation;
  for (const auto& [id, job] : change.jobs) mutation.jobs.push_back(&job);
  for (const v1::JobEvent& e : change.events) mutation.events.push_back(&e);
  for (const auto& [id, w] : change.workers) mutation.workers.push_back(&w);
  if (absl::Status s = store_->Commit(mutation); !s.ok()) {
    log_->Warn("store_commit_failed", {{"error", std::string(s.message())}});
    return absl::UnavailableError(absl::StrCat("the coordinator's store failed: ", s.message()));
  }

  for (auto& [id, job] : change.jobs) {
    const v1::Job& j = job.record.job();
    const auto old = jobs_.find(id);
    const bool was_final = old != jobs_.end() && IsFinal(old->second.record.job().state());
    if (old == jobs_.end()) {
      jobs_by_sequence_[job.record.submit_sequence()] = id;
      if (!job.record.request_id().empty()) jobs_by_request_id_[job.record.request_id()] = id;
    } else {
      --state_counts_[old->second.record.job().state()];
    }
    ++state_counts_[j.state()];
    if (IsFinal(j.state())) {
      unfinished_.erase(id);
    } else {
      unfinished_.insert(id);
    }
    if (IsPlaced(j.state())) {
      placed_.insert(id);
    } else {
      placed_.erase(id);
    }
    if (IsFinal(j.state()) && !was_final) {
      policies_.erase(id);
      metrics_->RemoveJob(id);
      if (options_.on_job_end) options_.on_job_end(id);
    } else if (!IsFinal(j.state())) {
      metrics_->SetPrecision(id, j.progress().precision_bits());
    }
    jobs_[id] = std::move(job);
  }
  for (auto& [id, info] : change.workers) {
    WorkerEntry& entry = workers_[id];
    if (info.state() == v1::WORKER_STATE_LOST && entry.info.state() != v1::WORKER_STATE_LOST) {
      ++entry.stream_generation;  // Ends the lost worker's stream.
      entry.outbox.clear();
    }
    if (entry.info.state() != info.state()) {
      log_->Info("worker_state", {{"worker", id},
                                  {"name", info.worker_name()},
                                  {"state", absl::AsciiStrToLower(absl::string_view(
                                                v1::WorkerState_Name(info.state())).substr(13))}});
    }
    entry.info = std::move(info);
  }
  for (auto& [worker, event] : change.outbox) {
    auto it = workers_.find(worker);
    if (it != workers_.end() && it->second.info.state() == v1::WORKER_STATE_ACTIVE) {
      it->second.outbox.push_back(std::move(event));
    }
  }
  for (const v1::JobEvent& e : change.events) {
    const std::string seq = absl::StrCat(e.sequence());
    if (e.has_state_change()) {
      log_->Info("job_state", {{"job", e.job_id()},
                               {"seq", seq},
                               {"from", StateName(e.state_change().from())},
                               {"to", StateName(e.state_change().to())},
                               {"reason", e.state_change().reason()}});
    } else if (e.has_epoch()) {
      const v1::EpochMetrics& m = e.epoch().metrics();
      log_->Info("epoch_report",
                 {{"job", e.job_id()},
                  {"seq", seq},
                  {"epoch", absl::StrCat(e.epoch().epoch())},
                  {"bits", absl::StrCat(e.epoch().precision_bits())},
                  {"loss", m.has_train_loss() ? absl::StrFormat("%.4f", m.train_loss()) : ""},
                  {"seconds", absl::StrFormat("%.3f", m.seconds())}});
    } else if (e.has_precision_switch()) {
      log_->Info("precision_switch", {{"job", e.job_id()},
                                      {"seq", seq},
                                      {"epoch", absl::StrCat(e.precision_switch().epoch())},
                                      {"from_bits", absl::StrCat(e.precision_switch().from_bits())},
                                      {"to_bits", absl::StrCat(e.precision_switch().to_bits())}});
    }
  }
  UpdateCountMetrics();
  changed_.SignalAll();
  return absl::OkStatus();
}

void Coordinator::UpdateCountMetrics() {
  metrics_->SetJobCounts(state_counts_);
  int active = 0, lost = 0;
  for (const auto& [id, w] : workers_) {
    (w.info.state() == v1::WORKER_STATE_ACTIVE ? active : lost) += 1;
  }
  metrics_->SetWorkerCounts(active, lost);
}

// ---- JobService ----

absl::StatusOr<v1::Job> Coordinator::SubmitJob(const v1::SubmitJobRequest& request) {
  const std::string& request_id = request.request_id();
  if (!request_id.empty() && !IsToken(request_id, 64, "_-")) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id: must be 1 to 64 characters from [A-Za-z0-9_-], got \"",
                     request_id, "\""));
  }
  v1::JobSpec spec = request.spec();
  ApplyJobSpecDefaults(spec);
  if (absl::Status s = ValidateJobSpec(spec); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
      scheduler::MakePolicy(spec.precision());
  if (!policy.ok()) return policy.status();

  absl::MutexLock lock(&mu_);
  if (!request_id.empty()) {
    const auto it = jobs_by_request_id_.find(request_id);
    if (it != jobs_by_request_id_.end()) {
      const v1::Job& existing = jobs_.at(it->second).record.job();
      if (!google::protobuf::util::MessageDifferencer::Equals(existing.spec(), spec)) {
        return absl::AlreadyExistsError(absl::StrCat("request_id \"", request_id,
                                                     "\" already created job ", existing.id(),
                                                     " with a different spec"));
      }
      return existing;
    }
  }
  std::string id;
  do {
    id = RandomId("job-");
  } while (jobs_.count(id) != 0);
  Change change;
  StoredJob& job = change.jobs[id];
  job.record.set_submit_sequence(++last_submit_sequence_);
  job.record.set_request_id(request_id);
  job.policy_state = (*policy)->SerializeState();
  v1::Job& j = *job.record.mutable_job();
  j.set_id(id);
  *j.mutable_spec() = std::move(spec);
  SetTime(*j.mutable_create_time(), absl::Now());
  j.mutable_progress()->set_precision_bits(static_cast<uint32_t>((*policy)->precision_bits()));
  Transition(change, job, v1::JOB_STATE_QUEUED, "");
  policies_[id] = *std::move(policy);
  Schedule(change);
  if (absl::Status s = Apply(change); !s.ok()) {
    policies_.erase(id);
    return s;
  }
  return jobs_.at(id).record.job();
}

absl::StatusOr<v1::Job> Coordinator::GetJob(const std::string& job_id) {
  if (absl::Status s = RequireId("job_id", job_id); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  const auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  return it->second.record.job();
}

absl::StatusOr<v1::ListJobsResponse> Coordinator::ListJobs(const v1::ListJobsRequest& request) {
  if (request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: must be in [0, ", kMaxPageSize,
                                                   "], got ", request.page_size()));
  }
  uint64_t before = UINT64_MAX;
  if (!request.page_token().empty() && !absl::SimpleAtoi(request.page_token(), &before)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: not a token from ListJobs, got \"", request.page_token(), "\""));
  }
  const uint32_t page = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  absl::MutexLock lock(&mu_);
  v1::ListJobsResponse response;
  uint64_t last_returned = 0;
  for (auto it = std::make_reverse_iterator(jobs_by_sequence_.lower_bound(before));
       it != jobs_by_sequence_.rend(); ++it) {
    const v1::Job& j = jobs_.at(it->second).record.job();
    if (request.states_size() > 0 &&
        std::find(request.states().begin(), request.states().end(), j.state()) ==
            request.states().end()) {
      continue;
    }
    if (static_cast<uint32_t>(response.jobs_size()) == page) {
      // Another match exists: the next page starts below the last job returned.
      response.set_next_page_token(absl::StrCat(last_returned));
      break;
    }
    *response.add_jobs() = j;
    last_returned = it->first;
  }
  return response;
}

absl::StatusOr<v1::Job> Coordinator::CancelJob(const v1::CancelJobRequest& request) {
  if (absl::Status s = RequireId("job_id", request.job_id()); !s.ok()) return s;
  if (request.reason().size() > kMaxCancelReason) {
    return absl::InvalidArgumentError(absl::StrCat("reason: must be at most ", kMaxCancelReason,
                                                   " characters, got ", request.reason().size()));
  }
  absl::MutexLock lock(&mu_);
  const auto it = jobs_.find(request.job_id());
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", request.job_id(), " not found"));
  }
  const v1::JobState state = it->second.record.job().state();
  if (IsFinal(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", request.job_id(), " already ended (", StateName(state), ")"));
  }
  Change change;
  Transition(change, Stage(change, request.job_id()), v1::JOB_STATE_CANCELLED,
             request.reason().empty() ? "cancelled by user" : request.reason());
  Schedule(change);
  if (absl::Status s = Apply(change); !s.ok()) return s;
  return jobs_.at(request.job_id()).record.job();
}

v1::ListWorkersResponse Coordinator::ListWorkers() {
  absl::MutexLock lock(&mu_);
  const auto used = UsedDevices(Change());
  v1::ListWorkersResponse response;
  for (const auto& [id, entry] : workers_) {
    v1::WorkerInfo& w = *response.add_workers() = entry.info;
    uint32_t taken = 0;
    for (const auto& [key, n] : used) {
      if (key.first == id) taken += n;
    }
    w.set_free_devices(w.devices_size() > static_cast<int>(taken)
                           ? w.devices_size() - taken : 0);
  }
  for (const std::string& job_id : placed_) {
    const v1::Job& j = jobs_.at(job_id).record.job();
    for (v1::WorkerInfo& w : *response.mutable_workers()) {
      if (std::find(j.worker_ids().begin(), j.worker_ids().end(), w.worker_id()) !=
          j.worker_ids().end()) {
        w.add_job_ids(job_id);
      }
    }
  }
  std::sort(response.mutable_workers()->begin(), response.mutable_workers()->end(),
            [](const v1::WorkerInfo& a, const v1::WorkerInfo& b) {
              return std::tie(a.worker_name(), a.worker_id()) <
                     std::tie(b.worker_name(), b.worker_id());
            });
  return response;
}

absl::StatusOr<EventBatch> Coordinator::WaitForEvents(const std::string& job_id,
                                                      uint64_t from_sequence,
                                                      absl::Duration wait) {
  if (absl::Status s = RequireId("job_id", job_id); !s.ok()) return s;
  from_sequence = std::max<uint64_t>(from_sequence, 1);
  const absl::Time deadline = absl::Now() + wait;
  uint64_t last = 0;
  bool final = false;
  {
    absl::MutexLock lock(&mu_);
    while (true) {
      if (shut_down_) return absl::UnavailableError("the coordinator is shutting down");
      const auto it = jobs_.find(job_id);
      if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
      last = it->second.record.last_event_sequence();
      final = IsFinal(it->second.record.job().state());
      if (last >= from_sequence) break;
      if (final) return EventBatch{.final = true};
      if (changed_.WaitWithDeadline(&mu_, deadline)) return EventBatch{};
    }
  }
  // Events are committed before the cache moves, so the store holds at least up to `last`.
  absl::StatusOr<std::vector<v1::JobEvent>> events =
      store_->LoadEvents(job_id, from_sequence, kEventPage);
  if (!events.ok()) return events.status();
  EventBatch batch{.events = *std::move(events)};
  batch.final = final && !batch.events.empty() && batch.events.back().sequence() >= last;
  return batch;
}

// ---- WorkerService ----

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
    return absl::InvalidArgumentError(absl::StrCat(
        "worker_name: must be 1 to 253 characters from [A-Za-z0-9._-], got \"",
        request.worker_name(), "\""));
  }
  if (request.devices().empty()) {
    return absl::InvalidArgumentError("devices: at least one device is required");
  }
  for (int i = 0; i < request.devices_size(); ++i) {
    const v1::DeviceKind kind = request.devices(i).kind();
    if (kind != v1::DEVICE_KIND_CPU && kind != v1::DEVICE_KIND_CUDA) {
      return absl::InvalidArgumentError(
          absl::StrCat("devices[", i, "].kind: must be CPU or CUDA, got ", kind));
    }
  }
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
  const absl::Time now = absl::Now();
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
  (*worker)->last_heartbeat = absl::Now();
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

absl::StatusOr<v1::ReportEpochResponse> Coordinator::ReportEpoch(
    const v1::ReportEpochRequest& request) {
  if (absl::Status s = RequireId("worker_id", request.worker_id()); !s.ok()) return s;
  if (absl::Status s = RequireId("job_id", request.job_id()); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  const auto it = jobs_.find(request.job_id());
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", request.job_id(), " not found"));
  }
  const internal::JobRecord& record = it->second.record;
  const v1::Job& j = record.job();
  if (j.state() == v1::JOB_STATE_CANCELLED || j.state() == v1::JOB_STATE_FAILED) {
    v1::ReportEpochResponse stop;
    stop.set_next_precision_bits(request.precision_bits());
    stop.set_stop(true);
    return stop;
  }
  if (j.worker_ids().empty() || j.worker_ids(0) != request.worker_id() ||
      j.state() == v1::JOB_STATE_SUCCEEDED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", j.id(), " is not running with worker ", request.worker_id(), " as rank 0"));
  }
  if (record.has_last_report() && record.last_report_epoch() == request.epoch()) {
    return record.last_report();  // A retry: the same decision again.
  }
  scheduler::PrecisionPolicy& policy = *policies_.at(j.id());
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
  const std::string state_before = it->second.policy_state;
  absl::StatusOr<scheduler::Decision> decision = policy.Observe(observed);
  if (!decision.ok()) return decision.status();

  v1::ReportEpochResponse response;
  response.set_next_precision_bits(static_cast<uint32_t>(decision->next_precision_bits));
  response.set_switched(decision->switched);
  response.set_window_closed(decision->window_closed);
  *response.mutable_diagnostics() = ToProto(decision->diagnostics);

  Change change;
  StoredJob& job = Stage(change, j.id());
  job.policy_state = policy.SerializeState();
  job.record.set_last_report_epoch(request.epoch());
  *job.record.mutable_last_report() = response;
  job.record.set_acknowledged(true);
  if (job.record.job().state() == v1::JOB_STATE_SCHEDULED) {
    Transition(change, job, v1::JOB_STATE_RUNNING, "");
  }
  v1::EpochReport& report = *AddEvent(change, job).mutable_epoch();
  report.set_epoch(request.epoch());
  report.set_precision_bits(bits);
  *report.mutable_metrics() = request.metrics();
  *report.mutable_diagnostics() = response.diagnostics();
  v1::JobProgress& progress = *job.record.mutable_job()->mutable_progress();
  progress.set_epochs_completed(request.epoch() + 1);
  progress.set_precision_bits(response.next_precision_bits());
  if (request.metrics().has_train_loss()) progress.set_train_loss(request.metrics().train_loss());
  if (request.metrics().has_test_accuracy()) {
    progress.set_test_accuracy(request.metrics().test_accuracy());
  }
  if (decision->switched) {
    progress.add_switch_epochs(request.epoch() + 1);
    v1::PrecisionSwitch& s = *AddEvent(change, job).mutable_precision_switch();
    s.set_epoch(request.epoch() + 1);
    s.set_from_bits(bits);
    s.set_to_bits(response.next_precision_bits());
    *s.mutable_diagnostics() = response.diagnostics();
  }
  if (absl::Status s = Apply(change); !s.ok()) {
    // The policy moved but nothing was stored: put it back as the store has it.
    policies_[j.id()] = *scheduler::RestorePolicy(state_before);
    return s;
  }
  metrics_->ObserveEpoch(request.job_id(), report);
  if (decision->switched) {
    metrics_->ObserveSwitch(request.job_id(), bits, response.next_precision_bits());
  }
  return response;
}

absl::Status Coordinator::ReportResult(const v1::ReportResultRequest& request) {
  if (absl::Status s = RequireId("worker_id", request.worker_id()); !s.ok()) return s;
  if (absl::Status s = RequireId("job_id", request.job_id()); !s.ok()) return s;
  if (request.succeeded() && !request.has_result()) {
    return absl::InvalidArgumentError("result: required when succeeded is true");
  }
  if (!request.succeeded() && request.error().empty()) {
    return absl::InvalidArgumentError("error: required when succeeded is false");
  }
  absl::MutexLock lock(&mu_);
  const auto it = jobs_.find(request.job_id());
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrCat("job ", request.job_id(), " not found"));
  }
  const v1::Job& j = it->second.record.job();
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
    Transition(change, job, v1::JOB_STATE_FAILED,
               absl::StrCat("worker ", name, ": ", request.error()));
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
      return absl::CancelledError("a newer assignment stream replaced this one, or the worker "
                                  "was lost");
    }
    if (!it->second.outbox.empty()) {
      std::vector<v1::AssignmentEvent> events(
          std::make_move_iterator(it->second.outbox.begin()),
          std::make_move_iterator(it->second.outbox.end()));
      it->second.outbox.clear();
      return events;
    }
    if (changed_.WaitWithDeadline(&mu_, deadline)) return std::vector<v1::AssignmentEvent>();
  }
}

void Coordinator::ExpireLeases() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  Change change;
  for (const auto& [id, entry] : workers_) {
    if (entry.info.state() != v1::WORKER_STATE_ACTIVE) continue;
    const absl::Duration silent = now - entry.last_heartbeat;
    if (silent <= options_.lease) continue;
    StageWorker(change, id).set_state(v1::WORKER_STATE_LOST);
    FailJobsOn(change, id,
               absl::StrFormat("worker %s (%s) lost: no heartbeat for %.1f s",
                               entry.info.worker_name(), id, absl::ToDoubleSeconds(silent)));
  }
  if (change.workers.empty()) return;
  Schedule(change);
  if (absl::Status s = Apply(change); !s.ok()) {
    log_->Warn("lease_expiry_failed", {{"error", std::string(s.message())}});
  }
}

void Coordinator::CheckpointStore() {
  if (absl::Status s = store_->Checkpoint(); !s.ok()) {
    log_->Warn("store_checkpoint_failed", {{"error", std::string(s.message())}});
  }
}

void Coordinator::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  changed_.SignalAll();
}

}  // namespace muppet::server
