// The training loop of one rank: epochs of minibatch SGD over a dataset, with evaluation, at
// the precision a PrecisionController decides after every policy epoch. With a communicator of
// several ranks it trains data parallel: rank 0's model is copied to every rank, each rank
// trains on its share of every global batch, gradients are summed over the ranks during
// backward (GradientReducer), BatchNorm keeps per-rank batch statistics (as PyTorch DDP does),
// and rank 0's controller decides the precision of every rank.
#ifndef MUPPET_WORKER_TRAIN_TRAINER_H_
#define MUPPET_WORKER_TRAIN_TRAINER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "scheduler/precision_policy.h"
#include "worker/comm/communicator.h"
#include "worker/data/loader.h"
#include "worker/models/model.h"
#include "worker/nn/loss.h"
#include "worker/optim/sgd.h"
#include "worker/train/checkpoint.h"
#include "worker/train/gradient_reducer.h"
#include "worker/train/gradient_window.h"
#include "worker/train/ladder_probe.h"
#include "worker/train/step_offload.h"

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
  double seconds = 0;         // Training time of the epoch, without evaluation or decision waits.
  double images_per_second = 0;
  int64_t samples = 0;
  int64_t saturations = 0;  // Saturated fixed-point codes and sums during the epoch (this rank).
  // Data parallel (zero on one rank): sum_r ||g_r||^2 / ||sum_r g_r||^2 at the last policy epoch
  // end of the epoch, and this rank's gradient communication during the epoch (in the metrics
  // of a policy epoch report, during that policy epoch).
  double rank_gradient_diversity = 0;
  int64_t communication_bytes = 0;           // Sent into the gradient allreduces.
  double communication_seconds = 0;          // The communication thread's busy time.
  double communication_exposed_seconds = 0;  // The time backward's end waited for it.
  // The fixed-point routes chosen during the epoch (worker/nn/route.h), evaluation included.
  std::vector<RouteChoice> route_choices;
  // Route choices of the run so far, by route.
  int64_t integer_route_passes = 0;
  int64_t grid_route_passes = 0;
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
  double rank_gradient_diversity = 0;                // Data parallel only, as in EpochResult.
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
  // Before the first epoch, with the hardware-aware ladder: has the policy climb the levels
  // `probe` kept (FP32 if none) and returns the first policy epoch's precision. UNIMPLEMENTED
  // for a controller without a ladder to change.
  virtual absl::StatusOr<int> AdoptLadder(const LadderProbe& probe) {
    return absl::UnimplementedError("this precision controller has no ladder to adopt");
  }
  // After rank 0 wrote a checkpoint, before the next policy epoch ends: where the policy lives
  // elsewhere, records it there. An error fails the run.
  virtual absl::Status OnCheckpoint(const CheckpointInfo& info) { return absl::OkStatus(); }
  // The controller's state for a checkpoint (a local policy's), or empty where the policy lives
  // elsewhere (the coordinator's).
  virtual std::string SerializeState() const { return ""; }
  // Restores what SerializeState returned, before the first epoch of a resumed run; empty is
  // nothing to restore. INVALID_ARGUMENT for state this controller cannot take.
  virtual absl::Status RestoreState(const std::string& state) {
    return state.empty()
               ? absl::OkStatus()
               : absl::InvalidArgumentError("this precision controller keeps no state of its own");
  }
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
  FixedPointRoute fixed_point_route = FixedPointRoute::kAuto;  // worker/nn/route.h
  // Length of a policy epoch in iterations; 0 means a real epoch.
  int64_t policy_epoch_iterations = 0;
  // When set and true, training stops before the next iteration (or evaluation batch) with
  // CANCELLED; data parallel, every rank stops after the same iteration. Must outlive the
  // trainer.
  const std::atomic<bool>* cancel = nullptr;
  // The ranks of a data-parallel job (must outlive the trainer), or null for one rank. Every
  // rank passes the same options otherwise. `batch_size` is then the global batch.
  comm::Communicator* comm = nullptr;
  // Buckets and the timeout of every collective: a lost or stuck rank fails the others within
  // it (DEADLINE_EXCEEDED or UNAVAILABLE).
  GradientReducerOptions reduction;
  // Where the steps run when not on the CPU model (a GPU's; step_offload.h), or null. One rank
  // only (no `comm` of several ranks). Must outlive the trainer.
  StepOffload* offload = nullptr;
};

class Trainer {
 public:
  // `model`, `data` and `controller` must outlive the trainer. Without a controller the model
  // trains at whatever precision it has. The model's precision (bits) is the caller's to set
  // before the first epoch; the trainer sets its seed and rounding. Data parallel, every rank
  // needs a controller or none, and only rank 0's is consulted.
  Trainer(Model& model, const TrainTest& data, const TrainerOptions& options,
          PrecisionController* controller = nullptr);

  // As above, with the training set's statistics already computed (`Normalization::Of(
  // data.train)`), for callers that need them too: both sets are normalised with them, the test
  // set as at deployment.
  Trainer(Model& model, const TrainTest& data, const TrainerOptions& options,
          PrecisionController* controller, const Normalization& normalization);

  // Trains one epoch at learning rate `lr`, consulting the controller after each policy epoch,
  // then evaluates on the test set. Errors: a layer met NaN or infinity at a fixed-point level
  // (training diverged), the controller's, CANCELLED (options.cancel), or data parallel a
  // collective's error or ABORTED naming another rank that failed.
  absl::StatusOr<EpochResult> TrainEpoch(int epoch, double lr,
                                         TrainingObserver* observer = nullptr);

  // Test-set accuracy at the model's current precision, ratio in [0, 1]; data parallel, over
  // every rank's share with rank 0's BatchNorm statistics.
  absl::StatusOr<double> Evaluate();

  // Gradient communication so far (zeros on one rank).
  ReductionStats reduction_stats() const;

  // The trainer's state between epochs, for a checkpoint (checkpoint.h): the model's weights
  // and buffers, the optimiser's momentum, the precision (word length, rounding-stream position,
  // saturations, route choices), the gradient window and the policy epoch bookkeeping. Leaves
  // the run's fields of `checkpoint.state` (spec, next epoch, schedule, policy state) alone.
  void SaveState(TrainingCheckpoint& checkpoint) const;

  // Restores what SaveState wrote, before the first epoch of a resumed run. INVALID_ARGUMENT,
  // naming section "run" and the first difference, for a checkpoint of another model (its name,
  // or a parameter's or buffer's name or shape).
  absl::Status RestoreState(const TrainingCheckpoint& checkpoint);

  // With an offload: copies its state into the CPU model and optimiser (SaveState reads them);
  // nothing without one. The offload's errors.
  absl::Status DownloadState();

 private:
  // CANCELLED once options.cancel is set.
  absl::Status CheckCancelled() const;
  // INVALID_ARGUMENT for an offload with several ranks.
  absl::Status CheckOffload() const;
  // One evaluation batch's loss on the CPU model or the offload.
  absl::StatusOr<SoftmaxCrossEntropy::Result> EvaluateBatch(const Batch& batch);

  bool data_parallel() const { return reducer_ != nullptr; }
  // Fills `result`'s route counts from the model's choices so far.
  void CountRoutes(EpochResult& result) const;
  // Copies rank 0's model to every rank, once, before the first step.
  absl::Status Synchronize();
  // Forward, backward and (data parallel) the gradient sum of one minibatch; with
  // `measure_diversity`, the across-rank diversity of its gradient into rank_diversity_.
  absl::StatusOr<SoftmaxCrossEntropy::Result> Step(const Batch& batch, bool measure_diversity);
  // The controller's decision: rank 0's, shared with every rank.
  absl::StatusOr<scheduler::Decision> Decide(const PolicyEpochReport& report);

  // Reports the policy epoch that just ended and applies the decision; `next_epoch` is the real
  // epoch of the next iteration.
  absl::Status EndPolicyEpoch(const EpochResult& metrics, int precision_bits, int next_epoch,
                              EpochResult& result, TrainingObserver* observer);

  // Running totals over a span of iterations.
  struct Tally {
    double start = SteadySeconds();
    double paused = 0;  // Seconds since start spent waiting for precision decisions.
    double loss_sum = 0;
    int64_t correct = 0;
    int64_t samples = 0;

    void Add(const SoftmaxCrossEntropy::Result& r, int64_t n);
    // Fills the training metrics of `out` (test accuracy left as is).
    void Fill(EpochResult& out) const;
  };
  // Sums a tally's loss, correct answers and samples over the ranks.
  absl::Status SumTally(Tally& tally);

  Model& model_;
  TrainerOptions options_;
  PrecisionController* controller_;
  BatchLoader train_loader_;
  BatchLoader test_loader_;
  Sgd sgd_;
  SoftmaxCrossEntropy loss_;
  GradientWindow window_;
  int64_t policy_epoch_ = 0;
  int64_t policy_iterations_ = 0;          // Iterations into the current policy epoch.
  Tally policy_tally_;                     // Of the current policy epoch, across real epochs.
  ReductionStats policy_reduction_start_;  // The reducer's totals when it began.
  std::vector<scheduler::TensorGradient> pending_gradients_;

  comm::SoloCommunicator solo_;
  comm::Communicator& comm_;                  // solo_ on one rank.
  std::unique_ptr<GradientReducer> reducer_;  // Data parallel only.
  bool synchronized_ = false;
  double rank_diversity_ = 0;  // Of the last measured step.
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_TRAINER_H_
