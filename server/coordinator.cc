#include "server/coordinator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "scheduler/placement.h"
#include "server/coordinator_internal.h"

// The coordinator's core: loading, staging changes, placement, committing. JobService methods
// are in coordinator_jobs.cc, WorkerService methods in coordinator_workers.cc.
namespace muppet::server {

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(std::unique_ptr<Store> store,
                                                                 const CoordinatorOptions& options,
                                                                 Metrics* metrics, Logger* log) {
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(store), options, metrics, log));
  if (absl::Status s = c->Load(); !s.ok()) return s;
  return c;
}

absl::Status Coordinator::MissingJob(const std::string& job_id) const {
  const auto it = damaged_jobs_.find(job_id);
  if (it != damaged_jobs_.end()) {
    return absl::DataLossError(
        absl::StrCat(it->second, "; the job cannot be served (its row is left as it is)"));
  }
  // A long id is not echoed whole: the error travels in gRPC metadata, which a few kilobytes
  // fill (the client then sees RESOURCE_EXHAUSTED instead).
  constexpr size_t kShown = 64;
  return absl::NotFoundError(absl::StrCat(
      "job ",
      job_id.size() <= kShown
          ? job_id
          : absl::StrCat(job_id.substr(0, kShown), "... (", job_id.size(), " characters)"),
      " not found"));
}

absl::Status Coordinator::Load() {
  absl::StatusOr<LoadedJobs> loaded = store_->LoadJobs();
  if (!loaded.ok()) return loaded.status();
  absl::StatusOr<std::vector<v1::WorkerInfo>> workers = store_->LoadWorkers();
  if (!workers.ok()) return workers.status();
  absl::MutexLock lock(&mu_);
  // A damaged job costs that job, not the coordinator: the rest are served.
  for (const DamagedJob& d : loaded->damaged) {
    damaged_jobs_[d.id] = d.error;
    last_submit_sequence_ = std::max(last_submit_sequence_, d.submit_sequence);
    log_->Warn("job_damaged", {{"job", d.id}, {"error", d.error}});
  }
  for (StoredJob& job : loaded->jobs) {
    const std::string id = job.record.job().id();
    v1::Job& j = *job.record.mutable_job();
    if (IsPlaced(j.state()) && j.attempts().empty()) {
      // Placed by a coordinator that kept no attempts: that placement is attempt 1.
      v1::JobAttempt& attempt = *j.add_attempts();
      attempt.set_attempt(1);
      *attempt.mutable_worker_ids() = j.worker_ids();
    }
    if (!IsFinal(job.record.job().state())) {
      absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
          scheduler::RestorePolicy(job.policy_state);
      if (!policy.ok()) {
        damaged_jobs_[id] = absl::StrCat("the policy state of job ", id,
                                         " is corrupt: ", policy.status().message());
        last_submit_sequence_ = std::max(last_submit_sequence_, job.record.submit_sequence());
        log_->Warn("job_damaged", {{"job", id}, {"error", damaged_jobs_[id]}});
        continue;
      }
      policies_[id] = *std::move(policy);
      metrics_->SetJob(job.record.job());
    }
    jobs_by_sequence_[job.record.submit_sequence()] = id;
    if (!job.record.request_id().empty()) {
      jobs_by_request_id_[job.record.request_id()] = id;
    }
    last_submit_sequence_ = std::max(last_submit_sequence_, job.record.submit_sequence());
    ++state_counts_[job.record.job().state()];
    if (!IsFinal(job.record.job().state())) unfinished_.insert(id);
    if (IsPlaced(job.record.job().state())) placed_.insert(id);
    jobs_[id] = std::move(job);
  }
  const absl::Time now = options_.clock->Now();
  for (v1::WorkerInfo& info : *workers) {
    WorkerEntry& entry = workers_[info.worker_id()];
    entry.info = std::move(info);
    entry.last_heartbeat = now;
  }
  log_->Info("store_loaded", {{"jobs", absl::StrCat(jobs_.size())},
                              {"damaged_jobs", absl::StrCat(damaged_jobs_.size())},
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
  SetTime(*event.mutable_time(), options_.clock->Now());
  return event;
}

namespace {

// Ends the job's current attempt, if one is open, at `now` with `reason` (empty: it succeeded).
void CloseAttempt(v1::Job& j, absl::Time now, const std::string& reason) {
  if (j.attempts().empty() || j.attempts().rbegin()->has_end_time()) return;
  v1::JobAttempt& attempt = *j.mutable_attempts()->rbegin();
  SetTime(*attempt.mutable_end_time(), now);
  attempt.set_end_reason(reason);
}

}  // namespace

void Coordinator::Transition(Change& change, StoredJob& job, v1::JobState to,
                             const std::string& reason) {
  v1::Job& j = *job.record.mutable_job();
  const v1::JobState from = j.state();
  j.set_state(to);
  // Job.reason explains an unsuccessful end; other transitions keep theirs in the event only.
  if (to == v1::JOB_STATE_FAILED || to == v1::JOB_STATE_CANCELLED) j.set_reason(reason);
  const absl::Time now = options_.clock->Now();
  if (to == v1::JOB_STATE_RUNNING) SetTime(*j.mutable_start_time(), now);
  if (IsFinal(to)) {
    SetTime(*j.mutable_end_time(), now);
    if (to != v1::JOB_STATE_SUCCEEDED) CancelOnWorkers(change, j, reason);
    CloseAttempt(j, now, to == v1::JOB_STATE_SUCCEEDED ? "" : reason);
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
    if (!IsFinal(j.state()) && std::find(j.worker_ids().begin(), j.worker_ids().end(), worker_id) !=
                                   j.worker_ids().end()) {
      ids.push_back(id);
    }
  }
  for (const std::string& id : ids) EndAttempt(change, Stage(change, id), reason, false);
}

void Coordinator::CancelOnWorkers(Change& change, const v1::Job& j, const std::string& reason) {
  for (const std::string& worker : j.worker_ids()) {
    v1::AssignmentEvent cancel;
    cancel.mutable_cancel()->set_job_id(j.id());
    cancel.mutable_cancel()->set_reason(reason);
    cancel.mutable_cancel()->set_attempt(static_cast<uint32_t>(j.attempts_size()));
    change.outbox.emplace_back(worker, std::move(cancel));
  }
}

void Coordinator::EndAttempt(Change& change, StoredJob& job, const std::string& reason,
                             bool permanent) {
  v1::Job& j = *job.record.mutable_job();
  const uint32_t restarts = j.attempts_size() > 0 ? j.attempts_size() - 1 : 0;
  if (permanent || restarts >= j.spec().max_restarts()) {
    Transition(change, job, v1::JOB_STATE_FAILED,
               permanent || j.spec().max_restarts() == 0
                   ? reason
                   : absl::StrCat(reason, " (attempt ", j.attempts_size(), "; all ",
                                  j.spec().max_restarts(), " restarts used)"));
    return;
  }
  CancelOnWorkers(change, j, reason);
  CloseAttempt(j, options_.clock->Now(), reason);
  j.clear_worker_ids();
  job.record.set_acknowledged(false);
  job.record.clear_begun();
  const std::string from =
      job.record.checkpoints().empty()
          ? std::string("from the beginning (no checkpoint)")
          : absl::StrCat("from the checkpoint at epoch ", job.record.checkpoints(0).info().epoch());
  Transition(change, job, v1::JOB_STATE_QUEUED,
             absl::StrCat("restart ", restarts + 1, " of ", j.spec().max_restarts(), ", ", from,
                          ": ", reason));
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
  a.set_attempt(static_cast<uint32_t>(j.attempts_size()));
  if (j.attempts_size() > 1) {
    for (const internal::CheckpointSnapshot& c : job.record.checkpoints()) {
      *a.add_checkpoints() = c.info();
    }
  }
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
    v1::JobAttempt& attempt = *j.add_attempts();
    attempt.set_attempt(static_cast<uint32_t>(j.attempts_size()));
    *attempt.mutable_worker_ids() = j.worker_ids();
    SetTime(*attempt.mutable_start_time(), options_.clock->Now());
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
  // Committed: now the cache may show it.
  for (auto& [id, job] : change.jobs) CacheJob(id, job);
  for (auto& [id, info] : change.workers) CacheWorker(id, std::move(info));
  for (auto& [worker, event] : change.outbox) {
    auto it = workers_.find(worker);
    if (it != workers_.end() && it->second.info.state() == v1::WORKER_STATE_ACTIVE) {
      it->second.outbox.push_back(std::move(event));
    }
  }
  for (const v1::JobEvent& e : change.events) {
    LogEvent(e);
    // Back in the queue after having been placed: a restart.
    if (e.has_state_change() && e.state_change().to() == v1::JOB_STATE_QUEUED &&
        e.state_change().from() != v1::JOB_STATE_UNSPECIFIED) {
      metrics_->ObserveRestart();
    }
  }
  UpdateCountMetrics();
  changed_.SignalAll();
  return absl::OkStatus();
}

void Coordinator::CacheJob(const std::string& id, StoredJob& job) {
  const v1::Job& j = job.record.job();
  const auto old = jobs_.find(id);
  // The placement whose rendezvous keys this change ends, if any.
  const std::string ended_prefix =
      old != jobs_.end() && IsPlaced(old->second.record.job().state()) &&
              (!IsPlaced(j.state()) ||
               old->second.record.rendezvous_prefix() != job.record.rendezvous_prefix())
          ? old->second.record.rendezvous_prefix()
          : "";
  const bool was_final = old != jobs_.end() && IsFinal(old->second.record.job().state());
  if (old == jobs_.end()) {
    jobs_by_sequence_[job.record.submit_sequence()] = id;
    if (!job.record.request_id().empty()) {
      jobs_by_request_id_[job.record.request_id()] = id;
    }
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
  } else if (!IsFinal(j.state())) {
    metrics_->SetJob(j);
  }
  jobs_[id] = std::move(job);
  if (!ended_prefix.empty() && options_.on_rendezvous_end) options_.on_rendezvous_end(ended_prefix);
}

void Coordinator::CacheWorker(const std::string& id, v1::WorkerInfo info) {
  WorkerEntry& entry = workers_[id];
  if (info.state() == v1::WORKER_STATE_LOST && entry.info.state() != v1::WORKER_STATE_LOST) {
    ++entry.stream_generation;  // Ends the lost worker's stream.
    entry.outbox.clear();
  }
  if (entry.info.state() != info.state()) {
    log_->Info("worker_state",
               {{"worker", id},
                {"name", info.worker_name()},
                {"state", absl::AsciiStrToLower(
                              absl::string_view(v1::WorkerState_Name(info.state())).substr(13))}});
  }
  entry.info = std::move(info);
}

void Coordinator::LogEvent(const v1::JobEvent& e) {
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

void Coordinator::UpdateCountMetrics() {
  metrics_->SetJobCounts(state_counts_);
  int active = 0, lost = 0;
  for (const auto& [id, w] : workers_) {
    (w.info.state() == v1::WORKER_STATE_ACTIVE ? active : lost) += 1;
  }
  metrics_->SetWorkerCounts(active, lost);
}

void Coordinator::ExpireLeases() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = options_.clock->Now();
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

void Coordinator::MaintainStore() {
  if (absl::Status s = store_->Maintain(); !s.ok()) {
    log_->Warn("store_maintenance_failed", {{"error", std::string(s.message())}});
  }
}

void Coordinator::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  changed_.SignalAll();
}

}  // namespace muppet::server
