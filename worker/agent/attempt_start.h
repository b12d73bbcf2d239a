// Where an attempt of a job starts training. The first attempt starts from the beginning. A
// restarted attempt resumes from the newest checkpoint the coordinator offers that reads back
// whole and is the file the coordinator recorded (the same epoch and size); rank 0 chooses,
// tells the coordinator (which puts the policy back to that checkpoint's moment), and data
// parallel, the other ranks, which load the same file.
#ifndef MUPPET_WORKER_AGENT_ATTEMPT_START_H_
#define MUPPET_WORKER_AGENT_ATTEMPT_START_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "muppet/v1/worker.pb.h"
#include "worker/agent/remote_controller.h"
#include "worker/comm/communicator.h"
#include "worker/train/checkpoint.h"

namespace muppet {

struct AttemptStart {
  std::optional<LoadedCheckpoint> resume;  // None: from the beginning.
  int start_bits = 0;                      // When starting from the beginning.
};

// The checkpoint `offered` names, if it reads back whole and is the file recorded. Errors name
// the file: ReadTrainingCheckpoint's, and DATA_LOSS for another epoch or size.
absl::StatusOr<LoadedCheckpoint> LoadOffered(const v1::CheckpointInfo& offered);

// Where this rank's attempt of `assignment` starts. Rank 0 (`comm` null or rank 0) of an attempt
// after the first chooses and calls controller.BeginAttempt; the other ranks receive its choice.
// Errors: the coordinator's, a collective's, or (ranks other than 0) the chosen file's.
absl::StatusOr<AttemptStart> StartAttempt(const v1::Assignment& assignment,
                                          RemotePrecisionController& controller,
                                          comm::Communicator* comm, absl::Duration timeout,
                                          Logger& log);

// Whether a run's error would recur wherever the job ran, so that a restart cannot mend it: the
// spec or its data is at fault (INVALID_ARGUMENT: for example training diverged), or a checkpoint
// of another spec (FAILED_PRECONDITION).
bool IsPermanentFailure(const absl::Status& status);

}  // namespace muppet

#endif  // MUPPET_WORKER_AGENT_ATTEMPT_START_H_
