// A whole training run of a JobSpec on one rank: load the dataset, build the model, train every
// epoch at the precision the controller decides, with the spec's learning-rate schedule.
// muppet-train runs it with a local policy; muppet-worker with the coordinator's.
#ifndef MUPPET_WORKER_TRAIN_RUN_H_
#define MUPPET_WORKER_TRAIN_RUN_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "muppet/v1/job.pb.h"
#include "muppet/v1/spec.pb.h"
#include "worker/comm/communicator.h"
#include "worker/train/checkpoint.h"
#include "worker/train/ladder_probe.h"
#include "worker/train/trainer.h"

namespace muppet {

// What the run learns before the first epoch.
struct RunStart {
  int64_t train_images = 0;
  int64_t test_images = 0;
  int64_t parameters = 0;
  int64_t memory_estimate_bytes = 0;  // What the run will hold at its peak (memory.h).
  int64_t memory_limit_bytes = 0;     // What this rank may use.
};

class RunObserver : public TrainingObserver {
 public:
  // Once the data and model are ready.
  virtual void OnStart(const RunStart& start) {}
  // After each epoch, evaluation included.
  virtual void OnEpochEnd(const EpochResult& result) {}
  // When the hardware-aware ladder was measured, before the first epoch.
  virtual void OnLadderProbe(const LadderProbe& probe) {}
  // After a checkpoint was written.
  virtual void OnCheckpoint(const CheckpointInfo& info) {}
};

struct RunResult {
  std::vector<EpochResult> epochs;
  double final_test_accuracy = 0;
  double wall_seconds = 0;                  // Data loading included.
  std::vector<int> switch_epochs;           // First epoch at each new precision.
  std::optional<LadderProbe> ladder_probe;  // With PrecisionPolicySpec.auto_ladder.
};

struct RunOptions {
  // When set, stops the run within one iteration (CANCELLED).
  const std::atomic<bool>* cancel = nullptr;
  // Data parallel: this rank's communicator over the job's ranks (spec.batch_size is the global
  // batch), or null for one rank. Must outlive the run.
  comm::Communicator* comm = nullptr;
  // Bounds every collective: a lost or stuck rank fails the others within it.
  absl::Duration comm_timeout = absl::Seconds(60);
  // Where rank 0 writes checkpoints (none when empty): after every
  // spec.checkpoint_interval_epochs epochs and after every epoch with a precision switch,
  // keeping the newest `checkpoint_keep`.
  std::string checkpoint_dir;
  int checkpoint_keep = 2;
  // A checkpoint to resume from (every rank passes the same one); must outlive the run.
  const LoadedCheckpoint* resume = nullptr;
  // The CUDA device a job of resources.device_kind CUDA trains on (one rank, one GPU: the GPU
  // engine of worker/gpu, exact FP32 at the FP32 level).
  int cuda_device = 0;
};

// The result the coordinator records for a run that succeeded.
v1::JobResult ToJobResult(const RunResult& run);

// Trains `spec` (defaults applied, valid) starting at `start_bits`; with auto_ladder, the levels
// are timed first and the controller adopts the measured ladder (ladder_probe.h), whose first
// level (or FP32) replaces `start_bits`. With options.resume, it continues from that checkpoint
// instead: its epoch, precision, policy state and learning-rate schedule; the result then holds
// the epochs trained here. `observer` may be null.
// Errors: the dataset or model cannot be built (naming the file or field), training diverged,
// the controller's, data parallel a collective's (see Trainer::TrainEpoch), a checkpoint
// could not be written (INTERNAL, naming the file), or one to resume from is of another spec or
// model, or leaves no epoch to train (FAILED_PRECONDITION, naming the file and what differs).

absl::StatusOr<RunResult> RunTraining(const v1::JobSpec& spec, int start_bits,
                                      PrecisionController& controller, RunObserver* observer,
                                      const RunOptions& options = {});

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_RUN_H_
