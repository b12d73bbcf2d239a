// A training run's checkpoint: everything a resumed run needs to continue bit-identically to
// the uninterrupted one (same thread count): FP32 master weights, BatchNorm buffers, momentum,
// the precision with its rounding-stream position and route choices, the gradient window, the
// policy's state, the epoch and the learning-rate schedule's position. The data order and
// augmentation are pure functions of (seed, epoch, example) (worker/data/loader.h), so the epoch
// is their whole state.
//
// On disk (checkpoint_file.h) the sections are "run" (internal.TrainingState), "parameters",
// "momentum" and "buffers" (float32s in the order "run" lists) and "gradient_window" (float64s).
#ifndef MUPPET_WORKER_TRAIN_CHECKPOINT_H_
#define MUPPET_WORKER_TRAIN_CHECKPOINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "muppet/internal/checkpoint.pb.h"
#include "worker/train/checkpoint_file.h"

namespace muppet {

struct TrainingCheckpoint {
  internal::TrainingState state;
  std::vector<float> parameters;        // Every parameter's values, concatenated in order.
  std::vector<float> momentum;          // The same layout.
  std::vector<float> buffers;           // Every buffer's values, concatenated in order.
  std::vector<double> gradient_window;  // The parameters' layout.
};

// Writes `checkpoint` to `path` atomically. Errors as WriteCheckpointFile.
absl::StatusOr<WrittenFile> WriteTrainingCheckpoint(const std::string& path,
                                                    const TrainingCheckpoint& checkpoint);

// Reads the checkpoint at `path`, checking that every section is there, whole and as long as
// "run" says. Errors name the file and the section: those of ReadCheckpointFile, and DATA_LOSS
// for a missing, unparsable or wrongly sized section.
absl::StatusOr<TrainingCheckpoint> ReadTrainingCheckpoint(const std::string& path);

// What was written.
struct CheckpointInfo {
  std::string path;
  uint32_t next_epoch = 0;
  uint32_t policy_epoch = 0;    // Policy epochs decided before it.
  uint32_t precision_bits = 0;  // Precision a resumed run continues at.
  int64_t bytes = 0;
  uint32_t crc32c = 0;  // Of the whole file.
  double seconds = 0;   // Serialising and writing it.
};

// A checkpoint and where it came from.
struct LoadedCheckpoint {
  TrainingCheckpoint checkpoint;
  std::string path;
  // The newer checkpoints that did not read back, each error naming its file and section.
  std::vector<absl::Status> skipped;
};

// A run's checkpoint directory: checkpoint-EEEEEE.muppet, named by the epoch a resumed run
// starts at, the newest `keep` kept. Not thread-safe.
class CheckpointDirectory {
 public:
  CheckpointDirectory(std::string dir, int keep) : dir_(std::move(dir)), keep_(keep) {}

  // Creates the directory if needed, writes `checkpoint`, then deletes the checkpoints of later
  // epochs (a future that was rolled back: this run resumed from an older one) and all but the
  // newest `keep` of the rest. Errors: INTERNAL naming the directory or file (earlier
  // checkpoints stay).
  absl::StatusOr<CheckpointInfo> Save(const TrainingCheckpoint& checkpoint) const;

  // The newest checkpoint in the directory that reads back whole (older ones are the fallback
  // for a corrupt newer one). NOT_FOUND when the directory holds no checkpoint; DATA_LOSS
  // listing every file's error when none reads back.
  absl::StatusOr<LoadedCheckpoint> LoadLatest() const;

 private:
  // Checkpoint files, newest first.
  std::vector<std::string> List() const;

  std::string dir_;
  int keep_;
};

// `path` a checkpoint file, or a directory whose newest good checkpoint is taken.
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path);

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_CHECKPOINT_H_
