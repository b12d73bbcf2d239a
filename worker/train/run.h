// A whole training run of a JobSpec on one rank: load the dataset, build the model, train every
// epoch at the precision the controller decides, with the spec's learning-rate schedule.
// muppet-train runs it with a local policy; muppet-worker with the coordinator's.
#ifndef MUPPET_WORKER_TRAIN_RUN_H_
#define MUPPET_WORKER_TRAIN_RUN_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "muppet/v1/spec.pb.h"
#include "worker/train/trainer.h"

namespace muppet {

// What the run learns before the first epoch.
struct RunStart {
  int64_t train_images = 0;
  int64_t test_images = 0;
  int64_t parameters = 0;
};

class RunObserver : public TrainingObserver {
 public:
  // Once the data and model are ready.
  virtual void OnStart(const RunStart& start) {}
  // After each epoch, evaluation included.
  virtual void OnEpochEnd(const EpochResult& result) {}
};

struct RunResult {
  std::vector<EpochResult> epochs;
  double final_test_accuracy = 0;
  double wall_seconds = 0;  // Data loading included.
  std::vector<int> switch_epochs;  // First epoch at each new precision.
};

// Trains `spec` (defaults applied, valid) starting at `start_bits`. `observer` may be null;
// `cancel`, when set, stops the run within one iteration (CANCELLED). Errors: the dataset or
// model cannot be built (naming the file or field), training diverged, or the controller's.
absl::StatusOr<RunResult> RunTraining(const v1::JobSpec& spec, int start_bits,
                                      PrecisionController& controller, RunObserver* observer,
                                      const std::atomic<bool>* cancel = nullptr);

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_RUN_H_
