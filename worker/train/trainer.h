// The training loop of one rank: epochs of minibatch SGD over a dataset, with evaluation, at
// the precision a PrecisionController decides after every policy epoch.
#ifndef MUPPET_WORKER_TRAIN_TRAINER_H_
#define MUPPET_WORKER_TRAIN_TRAINER_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "scheduler/precision_policy.h"
#include "worker/data/loader.h"
#include "worker/models/model.h"
#include "worker/nn/loss.h"
#include "worker/optim/sgd.h"
#include "worker/train/gradient_window.h"

namespace muppet {

// A climb of the precision ladder.
struct PrecisionSwitchEvent {
  int epoch = 0;             // First (real) epoch with an iteration at to_bits.
  int64_t policy_epoch = 0;  // The policy epoch whose end decided it.
  int from_bits = 0;
  int to_bits = 0;
  scheduler::Diagnostics diagnostics;
};

struct EpochResult {
  int epoch = 0;
  int precision_bits = kFp32Bits;  // Of the epoch's last iteration.
  double learning_rate = 0;
  double train_loss = 0;      // Mean over the epoch's examples.
  double train_accuracy = 0;  // Ratio in [0, 1].
  double test_accuracy = 0;   // Ratio in [0, 1].
  double seconds = 0;         // Training time of the epoch, without evaluation.
  double images_per_second = 0;
  int64_t samples = 0;
  int64_t saturations = 0;  // Saturated fixed-point codes and sums during the epoch.
  // The policy's view of the last window that closed during the epoch, if one did.
  scheduler::Diagnostics diagnostics;
  std::vector<PrecisionSwitchEvent> switches;  // Decided during the epoch or at its end.
};

// What the trainer reports after each policy epoch.
struct PolicyEpochReport {
  int64_t epoch = 0;  // Policy epoch index j, from 0.
  int precision_bits = kFp32Bits;
  // Training metrics of the policy epoch. When policy epochs are real epochs, the whole
  // EpochResult, test accuracy included; otherwise loss, accuracy, samples and seconds of its
  // iterations, and no test accuracy (test_accuracy < 0).
  EpochResult metrics;
  std::vector<scheduler::TensorGradient> gradients;  // When the controller needs them.
};

// Decides the precision after each policy epoch: a local policy (muppet-train) or the
// coordinator (muppet-worker).
class PrecisionController {
 public:
  virtual ~PrecisionController() = default;
  // Whether the policy epoch now under way must report gradient statistics.
  virtual bool NeedsGradients() const = 0;
  // Reports a policy epoch; returns the decision for the next. An error stops training.
  virtual absl::StatusOr<scheduler::Decision> EndPolicyEpoch(const PolicyEpochReport& report) = 0;
};

// Receives progress while an epoch trains.
class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  // After each minibatch: `done` of `total` minibatches, the running mean loss, throughput, and
  // the seconds since the epoch began.
  virtual void OnIteration(int epoch, int64_t done, int64_t total, double mean_loss,
                           double images_per_second, double elapsed_seconds) {}
  // When the precision climbs.
  virtual void OnPrecisionSwitch(const PrecisionSwitchEvent& event) {}
};

struct TrainerOptions {
  int epochs = 1;
  int64_t batch_size = 128;
  bool augment = false;
  uint64_t seed = 0;  // Shuffling, augmentation and stochastic rounding.
  SgdOptions sgd;
  kernels::Rounding rounding = kernels::Rounding::kStochastic;
  // Length of a policy epoch in iterations; 0 means a real epoch.
  int64_t policy_epoch_iterations = 0;
  // When set and true, training stops before the next iteration (or evaluation batch) with
  // CANCELLED. Must outlive the trainer.
  const std::atomic<bool>* cancel = nullptr;
};

class Trainer {
 public:
  // `model`, `data` and `controller` must outlive the trainer. Without a controller the model
  // trains at whatever precision it has. The model's precision (bits) is the caller's to set
  // before the first epoch; the trainer sets its seed and rounding.
  Trainer(Model& model, const TrainTest& data, const TrainerOptions& options,
          PrecisionController* controller = nullptr);

  // Trains one epoch at learning rate `lr`, consulting the controller after each policy epoch,
  // then evaluates on the test set. Errors: a layer met NaN or infinity at a fixed-point level
  // (training diverged), the controller's, or CANCELLED (options.cancel).
  absl::StatusOr<EpochResult> TrainEpoch(int epoch, double lr,
                                         TrainingObserver* observer = nullptr);

  // Test-set accuracy at the model's current precision, ratio in [0, 1].
  absl::StatusOr<double> Evaluate();

 private:
  // The test set is normalised with the training set's statistics, as at deployment; they are
  // computed once, in the public constructor, for both loaders.
  Trainer(Model& model, const TrainTest& data, const TrainerOptions& options,
          PrecisionController* controller, const Normalization& normalization);

  // CANCELLED once options.cancel is set.
  absl::Status CheckCancelled() const;

  // Reports the policy epoch that just ended and applies the decision; `next_epoch` is the real
  // epoch of the next iteration.
  absl::Status EndPolicyEpoch(const EpochResult& metrics, int precision_bits, int next_epoch,
                              EpochResult& result, TrainingObserver* observer);

  // Running totals over a span of iterations.
  struct Tally {
    double start = SteadySeconds();
    double loss_sum = 0;
    int64_t correct = 0;
    int64_t samples = 0;

    void Add(const SoftmaxCrossEntropy::Result& r, int64_t n);
    // Fills the training metrics of `out` (test accuracy left as is).
    void Fill(EpochResult& out) const;
  };

  Model& model_;
  TrainerOptions options_;
  PrecisionController* controller_;
  BatchLoader train_loader_;
  BatchLoader test_loader_;
  Sgd sgd_;
  SoftmaxCrossEntropy loss_;
  GradientWindow window_;
  int64_t policy_epoch_ = 0;
  int64_t policy_iterations_ = 0;  // Iterations into the current policy epoch.
  Tally policy_tally_;             // Of the current policy epoch, across real epochs.
  std::vector<scheduler::TensorGradient> pending_gradients_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_TRAINER_H_
