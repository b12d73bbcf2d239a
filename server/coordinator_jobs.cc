#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/message_differencer.h"
#include "proto/spec_validation.h"
#include "server/coordinator.h"
#include "server/coordinator_internal.h"

// Coordinator: the JobService side.
namespace muppet::server {
namespace {

constexpr int kEventPage = 256;
constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;
constexpr size_t kMaxCancelReason = 1024;
// A ListWorkers page ends once it passes this many bytes, far below gRPC's 4 MiB message limit
// (one worker declares at most ~170 KiB, worker_checks.h).
constexpr size_t kMaxPageBytes = 2 << 20;

}  // namespace

absl::StatusOr<v1::Job> Coordinator::SubmitJob(const v1::SubmitJobRequest& request,
                                               const std::string& owner) {
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
    const auto it = jobs_by_request_id_.find(RequestKey(owner, request_id));
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
  if (!request_id.empty()) job.record.set_request_id(RequestKey(owner, request_id));
  job.policy_state = (*policy)->SerializeState();
  v1::Job& j = *job.record.mutable_job();
  j.set_id(id);
  j.set_owner(owner);
  *j.mutable_spec() = std::move(spec);
  SetTime(*j.mutable_create_time(), options_.clock->Now());
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
  if (it == jobs_.end()) return MissingJob(job_id);
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
  for (int i = 0; i < request.states_size(); ++i) {
    const int state = request.states(i);
    if (state == v1::JOB_STATE_UNSPECIFIED || !v1::JobState_IsValid(state)) {
      return absl::InvalidArgumentError(
          absl::StrCat("states[", i, "]: not a job state, got ", state));
    }
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
    if (!request.owner().empty() && j.owner() != request.owner()) continue;
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
  if (it == jobs_.end()) return MissingJob(request.job_id());
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

absl::StatusOr<v1::ListWorkersResponse> Coordinator::ListWorkers(
    const v1::ListWorkersRequest& request) {
  if (request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be in [0, ", kMaxPageSize, "], got ", request.page_size()));
  }
  // Workers in (name, id) order; a page token is the last one returned, "<name>/<id>" (names
  // have no '/').
  std::pair<std::string, std::string> after;
  if (!request.page_token().empty()) {
    const size_t slash = request.page_token().find('/');
    if (slash == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token: not a token from ListWorkers, got \"",
                       request.page_token().substr(0, 64), "\""));
    }
    after = {request.page_token().substr(0, slash), request.page_token().substr(slash + 1)};
  }
  const uint32_t page = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, std::string>> order;  // (name, id), sorted.
  for (const auto& [id, entry] : workers_) order.emplace_back(entry.info.worker_name(), id);
  std::sort(order.begin(), order.end());
  std::map<std::string, std::vector<std::string>> jobs_on;  // Worker id -> placed jobs.
  for (const std::string& job_id : placed_) {
    for (const std::string& w : jobs_.at(job_id).record.job().worker_ids()) {
      jobs_on[w].push_back(job_id);
    }
  }
  const auto used = UsedDevices(Change());
  v1::ListWorkersResponse response;
  size_t bytes = 0;  // Encoded so far, counted per worker (ByteSizeLong of the whole page each
                     // time would make a page quadratic in its size).
  for (auto it = request.page_token().empty() ? order.begin()
                                              : std::upper_bound(order.begin(), order.end(), after);
       it != order.end(); ++it) {
    if (response.workers_size() > 0 &&
        (static_cast<uint32_t>(response.workers_size()) == page || bytes > kMaxPageBytes)) {
      const v1::WorkerInfo& last = *response.workers().rbegin();
      response.set_next_page_token(absl::StrCat(last.worker_name(), "/", last.worker_id()));
      break;
    }
    const std::string& id = it->second;
    v1::WorkerInfo& w = *response.add_workers() = workers_.at(id).info;
    uint32_t taken = 0;
    for (const auto& [key, n] : used) {
      if (key.first == id) taken += n;
    }
    w.set_free_devices(w.devices_size() > static_cast<int>(taken) ? w.devices_size() - taken : 0);
    for (const std::string& job_id : jobs_on[id]) w.add_job_ids(job_id);
    bytes += w.ByteSizeLong() + 6;  // With its field tag (1 byte) and length (at most 5).
  }
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
      if (it == jobs_.end()) return MissingJob(job_id);
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

}  // namespace muppet::server
