// The worker agent behind muppet-worker: registers this machine's devices with the coordinator,
// heartbeats, keeps an assignment stream open, trains each assigned job on its own thread
// (reporting every policy epoch and the result), and cancels jobs within one iteration when the
// coordinator says so. When the coordinator is unreachable it retries with backoff; when the
// coordinator no longer knows it (lost), it stops its jobs and registers again.
#ifndef MUPPET_WORKER_AGENT_AGENT_H_
#define MUPPET_WORKER_AGENT_AGENT_H_

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "base/rpc.h"
#include "muppet/v1/worker.grpc.pb.h"

namespace muppet {

struct AgentOptions {
  std::string server = "127.0.0.1:7070";  // host:port of muppetd.
  std::string worker_name;                // Stable name, usually the host name.
  int slots = 1;                          // CPU ranks offered: jobs that may train at once.
  int threads = 0;  // CPU threads in all; 0: every usable core. Divided among the slots.
  std::map<std::string, std::string> labels;
  RetryPolicy retry;
  // Data-parallel jobs: every local rank runs this program (muppet-rank), listening on
  // `comm_address` for its peers; a collective waits at most `comm_timeout`.
  std::string rank_binary;
  std::string comm_address = "127.0.0.1";
  absl::Duration comm_timeout = absl::Seconds(60);
  // A rank that failed because a peer did waits this long before reporting, so that the worker
  // of the rank that was lost first (killed, crashed) reports the cause.
  absl::Duration peer_failure_grace = absl::Seconds(3);
  // How long a cancelled rank may take to stop before it is killed.
  absl::Duration stop_grace = absl::Seconds(20);
  // Rank 0 of each job writes its checkpoints into `checkpoint_dir`/<job id>/attempt-<N>/,
  // keeping the newest `checkpoint_keep` of each attempt; none when empty. A restart on another
  // worker reads them from the path the coordinator recorded, so workers on several machines
  // need a volume they share, mounted at the same path. A job's directory goes when it succeeds.
  std::string checkpoint_dir;
  int checkpoint_keep = 2;
};

class Agent {
 public:
  // `log` must outlive the agent.
  Agent(const AgentOptions& options, Logger* log);
  ~Agent();

  // Serves until Stop(). Errors only when the coordinator rejects the registration itself
  // (INVALID_ARGUMENT: a bad name or label) or the token (UNAUTHENTICATED).
  absl::Status Run();

  // Cancels the running jobs (they report failure), ends Run. Thread-safe; idempotent.
  void Stop();

  // The jobs training now.
  std::vector<std::string> RunningJobIds();

 private:
  // A job's attempt (Assignment.attempt): a restarted job may be assigned here again while its
  // cancelled older attempt is still finishing.
  using JobKey = std::pair<std::string, uint32_t>;
  struct JobRun {
    std::string job_id;
    uint32_t attempt = 0;
    std::atomic<bool> cancel{false};
    std::atomic<bool> done{false};
    std::string cancel_reason;  // Guarded by Agent::mu_.
    int slots = 0;              // CPU slots it holds until its thread is done.
    int gpu = -1;               // The CUDA device a CUDA job trains on, until it is done.
    std::thread thread;
  };
  // An assignment waiting for slots: the coordinator frees a cancelled job's slots at once, but
  // its thread may still be finishing (a blocked read), and a slot is never lent twice.
  struct PendingJob {
    v1::Assignment assignment;
    std::string worker_id;
  };

  // Registers, retrying while the coordinator is unavailable. Sets the heartbeat interval.
  absl::StatusOr<std::string> Register();
  // Heartbeats and streams assignments for `worker_id` until Stop() or the coordinator forgets
  // the worker.
  void Session(const std::string& worker_id);
  void HeartbeatLoop(const std::string& worker_id, std::atomic<bool>& session_over);
  void StartJob(const v1::Assignment& assignment, const std::string& worker_id);
  // Cancels `job_id`'s attempts up to `attempt` (every attempt when 0), pending or running.
  void CancelJob(const std::string& job_id, const std::string& reason, uint32_t attempt = 0);
  void CancelAll(const std::string& reason);
  void RunJob(JobRun* run, v1::Assignment assignment, std::string worker_id);
  // A report of a job that failed with `error` (RunJob adds the worker and job ids).
  static v1::ReportResultRequest Failure(std::string error);
  // Where rank 0 of an attempt writes its checkpoints: empty without --checkpoint-dir. Each
  // attempt has its own, so that one that is still finishing (a partitioned worker) never
  // overwrites the files of the next.
  std::string CheckpointDir(const v1::Assignment& assignment) const;
  // The directory of all of `job_id`'s attempts (--checkpoint-dir set).
  std::string JobCheckpointDir(const std::string& job_id) const;
  // Deletes the checkpoints of a job that succeeded.
  void RemoveCheckpoints(const std::string& job_id);
  // Trains a job of one rank on this thread; returns the report of how it ended.
  v1::ReportResultRequest TrainHere(JobRun* run, const v1::Assignment& assignment,
                                    const std::string& worker_id);
  // Trains this worker's ranks of a data-parallel job, a process each (LocalRanks).
  v1::ReportResultRequest TrainInRankProcesses(JobRun* run, const v1::Assignment& assignment,
                                               const std::string& worker_id);
  // "cancelled: <the coordinator's reason, or else `fallback`>".
  std::string CancelledError(JobRun* run, absl::string_view fallback);
  // Reports to the coordinator how a job ended, with retries, and logs it.
  void ReportEnd(JobRun* run, const v1::ReportResultRequest& request);
  // Joins the threads of finished jobs.
  void Reap();
  // Waits until every job has reported how it ended, then joins their threads.
  void AwaitJobs();

  const AgentOptions options_;  // Its retry policy holds the channel to the coordinator.
  Logger* const log_;
  const int threads_per_slot_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::atomic<bool> stop_{false};

  absl::Mutex mu_;
  absl::CondVar wake_heartbeat_;
  bool heartbeat_now_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(2);
  grpc::ClientContext* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // The open stream, to cancel.
  std::map<JobKey, std::unique_ptr<JobRun>> jobs_ ABSL_GUARDED_BY(mu_);
  std::deque<PendingJob> pending_ ABSL_GUARDED_BY(mu_);

  // Starts `assignment` on a thread of its own.
  void Launch(const v1::Assignment& assignment, const std::string& worker_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the pending assignments, in order, while their slots are free.
  void StartPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pending assignment of `key`, or pending_.end().
  std::deque<PendingJob>::iterator FindPending(const JobKey& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Slots held by jobs whose threads have not finished.
  int BusySlots() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace muppet

#endif  // MUPPET_WORKER_AGENT_AGENT_H_
