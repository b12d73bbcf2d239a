// Where an attempt of a job starts training. The first attempt starts from the beginning. A
// restarted attempt resumes from the newest checkpoint the coordinator offers that reads back
// whole and is the file the coordinator recorded (the same epoch and size); rank 0 chooses,
// tells the coordinator (which puts the policy back to that checkpoint's moment), and data
// parallel, the other ranks, which load the same file.
#ifndef MUPPET_WORKER_AGENT_ATTEMPT_START_H_
#define MUPPET_WORKER_AGENT_ATTEMPT_START_H_

#include "absl/status/statusor.h"
#include "base/log.h"
#include "muppet/v1/worker.pb.h"
#include "worker/agent/remote_controller.h"
#include "worker/train/checkpoint.h"
#include "worker/train/run.h"

namespace muppet {

// The checkpoint `offered` names, if it reads back whole and is the file recorded. Errors name
// the file: ReadTrainingCheckpoint's, and DATA_LOSS for another epoch or size.
absl::StatusOr<LoadedCheckpoint> LoadOffered(const v1::CheckpointInfo& offered);

// Trains this rank's share of `assignment`'s attempt with `options` (whose `resume` this sets):
// from the beginning for the first attempt; for a later one, from where rank 0 (`options.comm`
// null or rank 0) chooses, telling the coordinator (controller.BeginAttempt) and, data parallel,
// the other ranks, which load the same file. `observer` may be null. Errors: the coordinator's,
// a collective's, the chosen file's (ranks other than 0), and RunTraining's.
absl::StatusOr<RunResult> TrainAttempt(const v1::Assignment& assignment,
                                       RemotePrecisionController& controller, RunObserver* observer,
                                       RunOptions options, Logger& log);

// Whether a run's error would recur wherever the job ran, so that a restart cannot mend it: the
// spec or its data is at fault (INVALID_ARGUMENT: for example training diverged), or a checkpoint
// of another spec (FAILED_PRECONDITION).
bool IsPermanentFailure(const absl::Status& status);

}  // namespace muppet

#endif  // MUPPET_WORKER_AGENT_ATTEMPT_START_H_
