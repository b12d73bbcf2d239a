// A PrecisionController that asks the coordinator: after every policy epoch, rank 0 sends
// ReportEpoch and trains the next epoch at the precision in the reply. Calls are retried with
// backoff while the coordinator is unavailable (a report is idempotent by epoch), so a
// coordinator restart pauses training instead of failing it.
#ifndef MUPPET_WORKER_AGENT_REMOTE_CONTROLLER_H_
#define MUPPET_WORKER_AGENT_REMOTE_CONTROLLER_H_

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/rpc.h"
#include "muppet/v1/worker.grpc.pb.h"
#include "worker/train/trainer.h"

namespace muppet {

class RemotePrecisionController : public PrecisionController {
 public:
  // `stub`, `retry` and `cancel` must outlive the controller. `start_bits` is the precision of
  // the first policy epoch; every call carries `attempt` (Assignment.attempt).
  RemotePrecisionController(v1::WorkerService::Stub& stub, const RetryPolicy& retry,
                            std::string worker_id, std::string job_id, uint32_t attempt,
                            const v1::PrecisionPolicySpec& spec, int start_bits,
                            const std::atomic<bool>& cancel);

  bool NeedsGradients() const override;

  // CANCELLED when the coordinator says stop; the coordinator's error otherwise.
  absl::StatusOr<scheduler::Decision> EndPolicyEpoch(const PolicyEpochReport& report) override;

  // Sends AdoptLadder (retried); the coordinator's error otherwise.
  absl::StatusOr<int> AdoptLadder(const LadderProbe& probe) override;

  // Sends ReportCheckpoint (retried); the coordinator's error otherwise.
  absl::Status OnCheckpoint(const CheckpointInfo& info) override;

  // Rank 0 of a restarted attempt, before training: sends BeginAttempt (retried) with the epoch
  // of the offered checkpoint it resumes from (none: from the beginning) and the newer ones it
  // skipped; returns the precision to start at. The coordinator's error otherwise.
  absl::StatusOr<int> BeginAttempt(std::optional<uint32_t> resume_epoch,
                                   const std::vector<std::string>& skipped);

  // The test accuracy of an evaluation at the end of a training epoch. With policy epochs
  // shorter than an epoch, the next report carries it (once).
  void OnEvaluated(double test_accuracy) { pending_test_accuracy_ = test_accuracy; }

 private:
  v1::WorkerService::Stub& stub_;
  const RetryPolicy& retry_;
  const std::string worker_id_;
  const std::string job_id_;
  const uint32_t attempt_;
  const bool muppet_;
  int bits_;
  double pending_test_accuracy_ = -1;
  const std::atomic<bool>& cancel_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_AGENT_REMOTE_CONTROLLER_H_
