#include "worker/agent/attempt_start.h"

#include <filesystem>
#include <optional>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"
#include "worker/train/rank_sync.h"

namespace muppet {

absl::StatusOr<LoadedCheckpoint> LoadOffered(const v1::CheckpointInfo& offered) {
  const std::string& path = offered.path();
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) {
    return absl::DataLossError(absl::StrCat(path, ": cannot be read here: ", error.message()));
  }
  if (size != offered.size_bytes()) {
    return absl::DataLossError(absl::StrCat(path, ": ", size,
                                            " bytes, but the checkpoint recorded there had ",
                                            offered.size_bytes(), " (truncated, or another file)"));
  }
  absl::StatusOr<TrainingCheckpoint> read = ReadTrainingCheckpoint(path);
  if (!read.ok()) return read.status();
  if (read->state.next_epoch() != offered.epoch()) {
    return absl::DataLossError(absl::StrCat(
        path, ": section \"run\": resumes at epoch ", read->state.next_epoch(),
        ", but the checkpoint recorded there at epoch ", offered.epoch(), " (another file)"));
  }
  return LoadedCheckpoint{.checkpoint = *std::move(read), .path = path};
}

namespace {

// Rank 0's choice: the index of the offered checkpoint it resumes from (-1: none) and the
// precision to start at; `resume` receives the checkpoint.
absl::StatusOr<std::vector<int64_t>> Choose(const v1::Assignment& a,
                                            RemotePrecisionController& controller,
                                            std::optional<LoadedCheckpoint>& resume, Logger& log) {
  std::vector<std::string> skipped;
  int index = -1;
  for (int i = 0; i < a.checkpoints_size() && index < 0; ++i) {
    absl::StatusOr<LoadedCheckpoint> loaded = LoadOffered(a.checkpoints(i));
    if (loaded.ok()) {
      resume = *std::move(loaded);
      index = i;
      continue;
    }
    skipped.emplace_back(loaded.status().message());
    log.Warn("checkpoint_skipped", {{"job", a.job_id()}, {"error", skipped.back()}});
  }
  std::optional<uint32_t> epoch;
  if (index >= 0) epoch = a.checkpoints(index).epoch();
  absl::StatusOr<int> bits = controller.BeginAttempt(epoch, skipped);
  if (!bits.ok()) return bits.status();
  return std::vector<int64_t>{index, *bits};
}

}  // namespace

namespace {

struct AttemptStart {
  std::optional<LoadedCheckpoint> resume;  // None: from the beginning.
  int start_bits = 0;                      // When starting from the beginning.
};

// Where this rank's attempt starts (TrainAttempt).
absl::StatusOr<AttemptStart> StartAttempt(const v1::Assignment& a,
                                          RemotePrecisionController& controller,
                                          comm::Communicator* comm, absl::Duration timeout,
                                          Logger& log) {
  AttemptStart start{.start_bits = static_cast<int>(a.start_precision_bits())};
  if (a.attempt() <= 1) return start;
  const bool rank0 = comm == nullptr || comm->rank() == 0;
  absl::StatusOr<std::vector<int64_t>> choice = std::vector<int64_t>{-1, start.start_bits};
  if (rank0) choice = Choose(a, controller, start.resume, log);
  if (comm != nullptr && comm->size() > 1) choice = BroadcastResult(*comm, choice, 2, timeout);
  if (!choice.ok()) return choice.status();
  const int64_t index = (*choice)[0];
  start.start_bits = static_cast<int>((*choice)[1]);
  if (!rank0 && index >= 0) {
    absl::StatusOr<LoadedCheckpoint> loaded = LoadOffered(a.checkpoints(static_cast<int>(index)));
    if (!loaded.ok()) return loaded.status();
    start.resume = *std::move(loaded);
  }
  log.Info("attempt_started",
           {{"job", a.job_id()},
            {"attempt", absl::StrCat(a.attempt())},
            {"resumed_from", start.resume ? start.resume->path : "the beginning"}});
  return start;
}

}  // namespace

absl::StatusOr<RunResult> TrainAttempt(const v1::Assignment& assignment,
                                       RemotePrecisionController& controller, RunObserver* observer,
                                       RunOptions options, Logger& log) {
  absl::StatusOr<AttemptStart> start =
      StartAttempt(assignment, controller, options.comm, options.comm_timeout, log);
  if (!start.ok()) return start.status();
  options.resume = start->resume ? &*start->resume : nullptr;
  return RunTraining(assignment.spec(), start->start_bits, controller, observer, options);
}

bool IsPermanentFailure(const absl::Status& status) {
  return absl::IsInvalidArgument(status) || absl::IsFailedPrecondition(status);
}

}  // namespace muppet
