#include "worker/train/trainer.h"

#include "base/clock.h"

namespace muppet {

void Trainer::Tally::Add(const SoftmaxCrossEntropy::Result& r, int64_t n) {
  loss_sum += r.loss * n;
  correct += r.correct;
  samples += n;
}

void Trainer::Tally::Fill(EpochResult& out) const {
  out.seconds = SteadySeconds() - start;
  out.samples = samples;
  out.train_loss = samples == 0 ? 0 : loss_sum / samples;
  out.train_accuracy = samples == 0 ? 0 : static_cast<double>(correct) / samples;
  out.images_per_second = out.seconds > 0 ? samples / out.seconds : 0;
}

Trainer::Trainer(Model& model, const TrainTest& data, const TrainerOptions& options,
                 PrecisionController* controller)
    : Trainer(model, data, options, controller, Normalization::Of(data.train)) {}

Trainer::Trainer(Model& model, const TrainTest& data, const TrainerOptions& options,
                 PrecisionController* controller, const Normalization& normalization)
    : model_(model),
      options_(options),
      controller_(controller),
      train_loader_(data.train, normalization,
                    {.batch_size = options.batch_size,
                     .shuffle = true,
                     .augment = options.augment,
                     .seed = options.seed}),
      test_loader_(data.test, normalization, {.batch_size = options.batch_size, .shuffle = false}),
      sgd_(model.parameters(), options.sgd),
      window_(model.parameters(), options.sgd.weight_decay) {
  model_.precision().seed = options.seed;
  model_.precision().rounding = options.rounding;
}

absl::StatusOr<EpochResult> Trainer::TrainEpoch(int epoch, double lr, TrainingObserver* observer) {
  EpochResult result{.epoch = epoch, .learning_rate = lr};
  NumericPrecision& precision = model_.precision();
  const int64_t saturations_before = precision.saturations;
  const bool policy_by_iterations = options_.policy_epoch_iterations > 0;
  Tally epoch_tally;
  if (policy_iterations_ == 0)
    policy_tally_ = Tally();  // Time spent between epochs is not training.
  int64_t done = 0;
  const int64_t total = train_loader_.batches_per_epoch();
  train_loader_.StartEpoch(epoch);
  while (const Batch* batch = train_loader_.Next()) {
    if (absl::Status s = CheckCancelled(); !s.ok()) return s;
    ++precision.step;
    const int bits = precision.bits;
    const Tensor& logits = model_.Forward(batch->images, Mode::kTrain);
    const SoftmaxCrossEntropy::Result r = loss_.Forward(logits, batch->labels);
    model_.Backward(loss_.Backward());
    if (!precision.error.ok()) return precision.error;
    ++done;
    const bool policy_epoch_ends = policy_by_iterations
                                       ? ++policy_iterations_ == options_.policy_epoch_iterations
                                       : done == total;
    // The policy wants the last minibatch's gradient as the optimiser sees it: capture it
    // before the step changes the weights it adds decay from.
    if (policy_epoch_ends && controller_ != nullptr && controller_->NeedsGradients()) {
      pending_gradients_ = window_.Add();
    }
    sgd_.Step(lr);
    const int64_t n = batch->images.n();
    epoch_tally.Add(r, n);
    policy_tally_.Add(r, n);
    result.precision_bits = bits;
    if (observer != nullptr) {
      const double elapsed = SteadySeconds() - epoch_tally.start;
      observer->OnIteration(epoch, done, total, epoch_tally.loss_sum / epoch_tally.samples,
                            epoch_tally.samples / elapsed, elapsed);
    }
    if (policy_epoch_ends && policy_by_iterations && controller_ != nullptr) {
      EpochResult metrics{
          .epoch = epoch, .precision_bits = bits, .learning_rate = lr, .test_accuracy = -1};
      policy_tally_.Fill(metrics);
      policy_tally_ = Tally();
      policy_iterations_ = 0;
      const int next_epoch = done == total ? epoch + 1 : epoch;
      if (absl::Status s = EndPolicyEpoch(metrics, bits, next_epoch, result, observer); !s.ok()) {
        return s;
      }
    }
  }
  epoch_tally.Fill(result);
  absl::StatusOr<double> accuracy = Evaluate();
  if (!accuracy.ok()) return accuracy.status();
  result.test_accuracy = *accuracy;
  result.saturations = precision.saturations - saturations_before;
  if (!policy_by_iterations && controller_ != nullptr) {
    if (absl::Status s = EndPolicyEpoch(result, result.precision_bits, epoch + 1, result, observer);
        !s.ok()) {
      return s;
    }
  }
  return result;
}

absl::Status Trainer::EndPolicyEpoch(const EpochResult& metrics, int precision_bits, int next_epoch,
                                     EpochResult& result, TrainingObserver* observer) {
  PolicyEpochReport report{
      .epoch = policy_epoch_, .precision_bits = precision_bits, .metrics = metrics};
  report.gradients = std::move(pending_gradients_);
  pending_gradients_.clear();
  absl::StatusOr<scheduler::Decision> decision = controller_->EndPolicyEpoch(report);
  if (!decision.ok()) return decision.status();
  if (decision->window_closed) {
    window_.Reset();
    result.diagnostics = decision->diagnostics;
  }
  NumericPrecision& precision = model_.precision();
  if (decision->next_precision_bits != precision.bits) {
    const PrecisionSwitchEvent event{.epoch = next_epoch,
                                     .policy_epoch = policy_epoch_,
                                     .from_bits = precision.bits,
                                     .to_bits = decision->next_precision_bits,
                                     .diagnostics = decision->diagnostics};
    result.switches.push_back(event);
    if (observer != nullptr) observer->OnPrecisionSwitch(event);
    // Master weights are FP32 throughout: the layers simply quantise at the new word length,
    // or stop quantising at FP32.
    precision.bits = decision->next_precision_bits;
  }
  ++policy_epoch_;
  return absl::OkStatus();
}

absl::Status Trainer::CheckCancelled() const {
  if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) {
    return absl::CancelledError("training cancelled");
  }
  return absl::OkStatus();
}

absl::StatusOr<double> Trainer::Evaluate() {
  NumericPrecision& precision = model_.precision();
  int64_t correct = 0, seen = 0;
  test_loader_.StartEpoch(0);
  while (const Batch* batch = test_loader_.Next()) {
    if (absl::Status s = CheckCancelled(); !s.ok()) return s;
    ++precision.step;
    correct += loss_.Forward(model_.Forward(batch->images, Mode::kEval), batch->labels).correct;
    if (!precision.error.ok()) return precision.error;
    seen += batch->images.n();
  }
  return seen == 0 ? 0.0 : static_cast<double>(correct) / seen;
}

}  // namespace muppet
