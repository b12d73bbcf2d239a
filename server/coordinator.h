// The coordinator's logic, independent of gRPC: jobs and their state machine, workers and their
// leases, placement, and one precision policy per running job. Every change is committed to the
// Store before it is visible or acknowledged; the in-memory view is a cache of the store.
//
// Job states: QUEUED -> SCHEDULED (placed) -> RUNNING (a worker acknowledged it) -> SUCCEEDED |
// FAILED | CANCELLED; QUEUED and SCHEDULED may also go straight to FAILED or CANCELLED. A placed
// job whose worker is lost or whose rank fails goes back to QUEUED while it has restarts left
// (spec.max_restarts): each placement is an attempt, and a restarted attempt resumes from a
// checkpoint whose policy state the coordinator recorded. Every transition is an event.
#ifndef MUPPET_SERVER_COORDINATOR_H_
#define MUPPET_SERVER_COORDINATOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/log.h"
#include "muppet/v1/job.pb.h"
#include "muppet/v1/worker.pb.h"
#include "scheduler/precision_policy.h"
#include "server/metrics.h"
#include "server/store.h"

namespace muppet::server {

struct CoordinatorOptions {
  absl::Duration heartbeat_interval = absl::Seconds(2);
  absl::Duration lease = absl::Seconds(15);  // Silence after which a worker is lost.
  // Called, under the coordinator's lock, with a placement's rendezvous prefix when the
  // placement ends (the job finishes or is placed again), to drop its keys.
  std::function<void(const std::string& prefix)> on_rendezvous_end;
  // Leases, heartbeats and the times of jobs and events (tests pass a FakeClock; must outlive
  // the coordinator). Waits for events and assignments take real time.
  Clock* clock = Clock::Real();
};

// Events of a job for a watcher.
struct EventBatch {
  std::vector<v1::JobEvent> events;
  bool final = false;  // The job has ended and `events` reach its last event.
};

class Coordinator {
 public:
  // Loads the store's jobs, workers and policy states. Workers that were active get a fresh
  // lease (they may have kept training while the coordinator was down). `metrics` and `log`
  // must outlive the coordinator.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(std::unique_ptr<Store> store,
                                                             const CoordinatorOptions& options,
                                                             Metrics* metrics, Logger* log);

  // JobService. Errors as documented in proto/muppet/v1/job.proto. Who may call what is the
  // services' business (service.h); `owner` is the submitting principal, recorded in the job,
  // and scopes its request_id.
  absl::StatusOr<v1::Job> SubmitJob(const v1::SubmitJobRequest& request, const std::string& owner);
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> CancelJob(const v1::CancelJobRequest& request);
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const v1::ListWorkersRequest& request);

  // The events of `job_id` from `from_sequence` on (at most a page). When there are none yet,
  // waits up to `wait` for one; an empty, non-final batch means the wait ran out. NOT_FOUND for
  // an unknown job; UNAVAILABLE once the coordinator shuts down.
  absl::StatusOr<EventBatch> WaitForEvents(const std::string& job_id, uint64_t from_sequence,
                                           absl::Duration wait);

  // WorkerService. Errors as documented in proto/muppet/v1/worker.proto.
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  absl::StatusOr<v1::ReportEpochResponse> ReportEpoch(const v1::ReportEpochRequest& request);
  absl::Status ReportResult(const v1::ReportResultRequest& request);
  absl::StatusOr<v1::AdoptLadderResponse> AdoptLadder(const v1::AdoptLadderRequest& request);
  absl::Status ReportCheckpoint(const v1::ReportCheckpointRequest& request);

  // RendezvousService's scope: the rendezvous prefix of the placement that `key` (a key or a
  // prefix) lies under, if that placement is of a job placed on worker `worker_id` now.
  // INVALID_ARGUMENT without a worker id; PERMISSION_DENIED otherwise, naming the job and why.
  absl::StatusOr<std::string> RendezvousScope(const std::string& worker_id, const std::string& key);
  absl::StatusOr<v1::BeginAttemptResponse> BeginAttempt(const v1::BeginAttemptRequest& request);

  // Opens the assignment stream of a worker, replacing any older one, and queues again every
  // assignment the worker has not acknowledged. Returns the stream's generation.
  absl::StatusOr<uint64_t> OpenAssignmentStream(const std::string& worker_id);
  // The next events of the stream `generation`, waiting up to `wait`. CANCELLED when a newer
  // stream replaced it or the worker was lost; UNAVAILABLE once the coordinator shuts down.
  absl::StatusOr<std::vector<v1::AssignmentEvent>> NextAssignments(const std::string& worker_id,
                                                                   uint64_t generation,
                                                                   absl::Duration wait);

  // Marks workers silent for longer than the lease lost and fails their jobs. Called
  // periodically by the server.
  void ExpireLeases();

  // The store's periodic upkeep (Store::Maintain).
  void MaintainStore();

  // Wakes every waiting stream, which then ends with UNAVAILABLE; new waits return at once.
  void Shutdown();

 private:
  struct WorkerEntry {
    v1::WorkerInfo info;
    absl::Time last_heartbeat;
    uint64_t stream_generation = 0;
    std::deque<v1::AssignmentEvent> outbox;
  };
  // One operation's changes: committed together, then applied to the cache.
  // Maps keep references stable while an operation stages more entries.
  struct Change {
    std::map<std::string, StoredJob> jobs;
    std::vector<v1::JobEvent> events;
    std::map<std::string, v1::WorkerInfo> workers;
    std::vector<std::pair<std::string, v1::AssignmentEvent>> outbox;  // By worker id.
  };

  Coordinator(std::unique_ptr<Store> store, const CoordinatorOptions& options, Metrics* metrics,
              Logger* log)
      : store_(std::move(store)), options_(options), metrics_(metrics), log_(log) {}
  absl::Status Load();

  // A copy of the job for `change`: later edits go to the copy, committed with the change.
  StoredJob& Stage(Change& change, const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker's call about a job: INVALID_ARGUMENT for a missing id, NOT_FOUND for an unknown
  // job; else the job.
  absl::StatusOr<const StoredJob*> WorkerCallJob(const std::string& worker_id,
                                                 const std::string& job_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::WorkerInfo& StageWorker(Change& change, const std::string& worker_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends an event to a staged job.
  v1::JobEvent& AddEvent(Change& change, StoredJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves a staged job to `to`, with its event, timestamps and reason.
  void Transition(Change& change, StoredJob& job, v1::JobState to, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the current attempt of every unfinished job on `worker_id` with `reason` (EndAttempt).
  void FailJobsOn(Change& change, const std::string& worker_id, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends a staged job's current attempt, which failed with `reason`: back to QUEUED (a restart,
  // stopping its workers) while restarts are left and the failure is not `permanent`, else
  // FAILED.
  void EndAttempt(Change& change, StoredJob& job, const std::string& reason, bool permanent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends each of the job's workers a cancellation of its current attempt.
  void CancelOnWorkers(Change& change, const v1::Job& j, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Places queued jobs on free workers.
  void Schedule(Change& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Commits `change` and applies it to the cache, metrics and waiting streams.
  absl::Status Apply(Change& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Apply's steps after the commit: a job and a worker into the cache, an event into the log.
  // CacheJob moves `job` (the change's) into the cache: references into the cached job taken
  // before Apply are stale after it.
  void CacheJob(const std::string& id, StoredJob& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CacheWorker(const std::string& id, v1::WorkerInfo info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogEvent(const v1::JobEvent& event);
  // Stages what a decided policy epoch changes: the policy state, the answer kept for retries,
  // RUNNING, the epoch (and switch) events and the job's progress. Returns the epoch event.
  v1::EpochReport StageReport(Change& change, const v1::ReportEpochRequest& request, uint32_t bits,
                              const scheduler::PrecisionPolicy& policy,
                              const v1::ReportEpochResponse& response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Devices taken by unfinished placed jobs, by worker id and device kind, as of `change`.
  std::map<std::pair<std::string, v1::DeviceKind>, uint32_t> UsedDevices(const Change& change) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Assignment MakeAssignment(const StoredJob& job, size_t worker_index) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateCountMetrics() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<WorkerEntry*> ActiveWorker(const std::string& worker_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The error for a job id that jobs_ lacks: DATA_LOSS for a damaged one, else NOT_FOUND.
  absl::Status MissingJob(const std::string& job_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<Store> store_;
  const CoordinatorOptions options_;
  Metrics* const metrics_;
  Logger* const log_;

  absl::Mutex mu_;
  absl::CondVar changed_;  // Signalled on every new event, assignment and shutdown.
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, StoredJob> jobs_ ABSL_GUARDED_BY(mu_);
  // Ids of the jobs that have not ended: what scheduling and worker bookkeeping look at, so
  // their cost does not grow with the history.
  absl::flat_hash_set<std::string> unfinished_ ABSL_GUARDED_BY(mu_);
  // The unfinished jobs that hold workers (SCHEDULED or RUNNING).
  absl::flat_hash_set<std::string> placed_ ABSL_GUARDED_BY(mu_);
  std::map<v1::JobState, int> state_counts_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> jobs_by_sequence_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> jobs_by_request_id_ ABSL_GUARDED_BY(mu_);
  uint64_t last_submit_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // Policies of unfinished jobs.
  absl::flat_hash_map<std::string, std::unique_ptr<scheduler::PrecisionPolicy>> policies_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, WorkerEntry> workers_ ABSL_GUARDED_BY(mu_);  // By worker id.
  // Jobs whose stored record or policy state is corrupt, with the error: left in the store as
  // they are, and DATA_LOSS to every call that names them.
  absl::flat_hash_map<std::string, std::string> damaged_jobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muppet::server

#endif  // MUPPET_SERVER_COORDINATOR_H_
