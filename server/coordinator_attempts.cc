#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/coordinator.h"
#include "server/coordinator_internal.h"

// Coordinator: checkpoints and the attempts that resume from them.
namespace muppet::server {
namespace {

// Policy states kept for restarts: as many checkpoints as a worker keeps by default, so that a
// corrupt newest one falls back to the one before.
constexpr int kKeptCheckpoints = 2;

// Where a job stands as a checkpoint is recorded: what a restart from it goes back to.
internal::CheckpointSnapshot Snapshot(const StoredJob& job) {
  internal::CheckpointSnapshot snapshot;
  snapshot.set_policy_state(job.policy_state);
  *snapshot.mutable_progress() = job.record.job().progress();
  snapshot.mutable_progress()->clear_last_checkpoint();
  if (job.record.has_last_report()) {
    snapshot.set_last_report_epoch(job.record.last_report_epoch());
    *snapshot.mutable_last_report() = job.record.last_report();
  }
  return snapshot;
}

// The job as it was at `snapshot`.
void RollBack(const internal::CheckpointSnapshot& snapshot, StoredJob& job) {
  job.policy_state = snapshot.policy_state();
  *job.record.mutable_job()->mutable_progress() = snapshot.progress();
  if (snapshot.has_last_report()) {
    job.record.set_last_report_epoch(snapshot.last_report_epoch());
    *job.record.mutable_last_report() = snapshot.last_report();
  } else {
    job.record.clear_last_report_epoch();
    job.record.clear_last_report();
  }
}

// "6, 3" (the epochs of the recorded checkpoints), or "none".
std::string OfferedEpochs(const internal::JobRecord& record) {
  std::vector<uint32_t> epochs;
  for (const internal::CheckpointSnapshot& c : record.checkpoints()) {
    epochs.push_back(c.info().epoch());
  }
  return epochs.empty() ? "none" : absl::StrJoin(epochs, ", ");
}

}  // namespace

absl::Status Coordinator::ReportCheckpoint(const v1::ReportCheckpointRequest& request) {
  if (request.checkpoint().path().empty()) {
    return absl::InvalidArgumentError("checkpoint.path: required");
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<const StoredJob*> found = WorkerCallJob(request.worker_id(), request.job_id());
  if (!found.ok()) return found.status();
  const StoredJob& stored = **found;
  if (absl::Status s = CheckRankZero(stored.record, request.worker_id(), request.attempt(), true);
      !s.ok()) {
    return s;
  }
  v1::CheckpointInfo info = request.checkpoint();
  info.set_attempt(request.attempt());
  if (!stored.record.checkpoints().empty() && google::protobuf::util::MessageDifferencer::Equals(
                                                  stored.record.checkpoints(0).info(), info)) {
    return absl::OkStatus();  // A retry.
  }
  const scheduler::PrecisionPolicy& policy = *policies_.at(request.job_id());
  if (info.policy_epoch() != static_cast<uint32_t>(policy.next_epoch())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint.policy_epoch: the policy of job ", request.job_id(), " has decided ",
        policy.next_epoch(), " policy epochs, got ", info.policy_epoch()));
  }
  Change change;
  StoredJob& job = Stage(change, request.job_id());
  internal::CheckpointSnapshot snapshot = Snapshot(job);
  *snapshot.mutable_info() = info;
  auto& kept = *job.record.mutable_checkpoints();
  kept.Add(std::move(snapshot));
  std::rotate(kept.rbegin(), kept.rbegin() + 1, kept.rend());  // Newest first.
  while (kept.size() > kKeptCheckpoints) kept.RemoveLast();
  *job.record.mutable_job()->mutable_progress()->mutable_last_checkpoint() = info;
  *AddEvent(change, job).mutable_checkpoint() = info;
  if (absl::Status s = Apply(change); !s.ok()) return s;
  metrics_->ObserveCheckpoint(info.size_bytes());
  return absl::OkStatus();
}

absl::StatusOr<v1::BeginAttemptResponse> Coordinator::BeginAttempt(
    const v1::BeginAttemptRequest& request) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<const StoredJob*> found = WorkerCallJob(request.worker_id(), request.job_id());
  if (!found.ok()) return found.status();
  const StoredJob& stored = **found;
  const internal::JobRecord& record = stored.record;
  if (absl::Status s = CheckRankZero(record, request.worker_id(), request.attempt(), false);
      !s.ok()) {
    return s;
  }
  const std::string& id = request.job_id();
  v1::BeginAttemptResponse response;
  if (record.has_begun()) {
    if (!google::protobuf::util::MessageDifferencer::Equals(record.begun(), request)) {
      return absl::FailedPreconditionError(absl::StrCat("job ", id, ": attempt ", request.attempt(),
                                                        " already began elsewhere in its history"));
    }
    response.set_start_precision_bits(
        static_cast<uint32_t>(policies_.at(id)->precision_bits()));  // A retry, before training.
    return response;
  }
  // Where to go back to: the checkpoint named, or the beginning.
  internal::CheckpointSnapshot target;
  int kept = 0;
  if (request.has_resume_epoch()) {
    const auto& offered = record.checkpoints();
    const auto it = std::find_if(offered.begin(), offered.end(), [&](const auto& c) {
      return c.info().epoch() == request.resume_epoch();
    });
    if (it == offered.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("resume_epoch: job ", id, " has no recorded checkpoint at epoch ",
                       request.resume_epoch(), " (recorded: ", OfferedEpochs(record), ")"));
    }
    target = *it;
    kept = static_cast<int>(offered.end() - it);
  } else {
    absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> fresh =
        scheduler::MakePolicy(record.job().spec().precision());
    if (!fresh.ok()) return fresh.status();
    target.set_policy_state((*fresh)->SerializeState());
    target.mutable_progress()->set_precision_bits(
        static_cast<uint32_t>((*fresh)->precision_bits()));
  }
  absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
      scheduler::RestorePolicy(target.policy_state());
  if (!policy.ok()) return policy.status();

  Change change;
  StoredJob& job = Stage(change, id);
  RollBack(target, job);
  // Checkpoints newer than the one resumed from belong to a future that is trained again.
  auto& checkpoints = *job.record.mutable_checkpoints();
  checkpoints.DeleteSubrange(0, checkpoints.size() - kept);
  v1::Job& j = *job.record.mutable_job();
  if (target.has_info()) {
    *j.mutable_progress()->mutable_last_checkpoint() = target.info();
    *j.mutable_attempts()->rbegin()->mutable_resumed_from() = target.info();
  }
  *job.record.mutable_begun() = request;
  v1::AttemptStart& event = *AddEvent(change, job).mutable_attempt_start();
  event.set_attempt(request.attempt());
  if (target.has_info()) *event.mutable_resumed_from() = target.info();
  *event.mutable_skipped() = request.skipped();
  if (absl::Status s = Apply(change); !s.ok()) return s;
  response.set_start_precision_bits(static_cast<uint32_t>((*policy)->precision_bits()));
  policies_[id] = *std::move(policy);
  return response;
}

}  // namespace muppet::server
