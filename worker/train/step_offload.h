// A model's training steps run elsewhere than on the CPU model (worker/gpu runs them on a GPU):
// the trainer hands every batch to the offload instead of running the CPU model, and asks for
// the CPU model's state where it needs it (the policy's gradients, checkpoints). The CPU model
// keeps the precision (word length, seed, step), which the offload reads. One rank only.
#ifndef MUPPET_WORKER_TRAIN_STEP_OFFLOAD_H_
#define MUPPET_WORKER_TRAIN_STEP_OFFLOAD_H_

#include "absl/status/statusor.h"
#include "worker/data/loader.h"
#include "worker/nn/loss.h"
#include "worker/optim/sgd.h"

namespace muppet {

class StepOffload {
 public:
  virtual ~StepOffload() = default;

  // Forward, loss and backward of one training batch at the model's precision; the gradients
  // stay where the steps run. The trainer advances the precision step before, as before a CPU
  // forward pass. Errors: the batch is refused (INVALID_ARGUMENT naming it), training diverged
  // at a fixed-point level (INVALID_ARGUMENT naming the element), or the device failed
  // (INTERNAL naming the call).
  virtual absl::StatusOr<SoftmaxCrossEntropy::Result> Step(const Batch& batch) = 0;

  // The optimiser step at learning rate `lr` from the last Step's gradients.
  virtual absl::Status Update(double lr) = 0;

  // Loss and correct rows of one evaluation batch (running statistics, nothing updated). The
  // precision step is advanced before, as for Step. Errors as Step's.
  virtual absl::StatusOr<SoftmaxCrossEntropy::Result> Evaluate(const Batch& batch) = 0;

  // Copies the weights and the last Step's gradients into the CPU model's parameters (the
  // policy's view of a gradient adds weight decay from the weights).
  virtual absl::Status DownloadParameters() = 0;

  // Copies the weights, buffers (BatchNorm's running statistics) and the optimiser's state into
  // the CPU model and `sgd` (whose parameters are the CPU model's), for a checkpoint.
  virtual absl::Status Download(Sgd& sgd) = 0;

  // The reverse: the CPU model and `sgd` were restored (a resumed run) and the steps continue
  // from them.
  virtual absl::Status Upload(const Sgd& sgd) = 0;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_STEP_OFFLOAD_H_
