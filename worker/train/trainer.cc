#include "worker/train/trainer.h"

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/random.h"
#include "worker/train/rank_sync.h"

namespace muppet {
namespace {

// The gradient communication between two snapshots of the reducer's totals.
void FillCommunication(const ReductionStats& now, const ReductionStats& before,
                       EpochResult& result) {
  result.communication_bytes = now.wire_bytes - before.wire_bytes;
  result.communication_seconds = now.busy_seconds - before.busy_seconds;
  result.communication_exposed_seconds = now.exposed_seconds - before.exposed_seconds;
}

}  // namespace

void Trainer::Tally::Add(const SoftmaxCrossEntropy::Result& r, int64_t n) {
  loss_sum += r.loss * n;
  correct += r.correct;
  samples += n;
}

void Trainer::Tally::Fill(EpochResult& out) const {
  out.seconds = SteadySeconds() - start - paused;
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
                     .seed = options.seed,
                     .rank = options.comm ? options.comm->rank() : 0,
                     .ranks = options.comm ? options.comm->size() : 1}),
      test_loader_(data.test, normalization,
                   {.batch_size = options.batch_size,
                    .shuffle = false,
                    .rank = options.comm ? options.comm->rank() : 0,
                    .ranks = options.comm ? options.comm->size() : 1}),
      sgd_(model.parameters(), options.sgd),
      window_(model.parameters(), options.sgd.weight_decay),
      comm_(options.comm ? *options.comm : solo_) {
  NumericPrecision& precision = model_.precision();
  precision.rounding = options.rounding;
  precision.route = options.fixed_point_route;
  precision.seed = options.seed;
  if (comm_.size() > 1) {
    // Each rank rounds on streams of its own; the shuffle seed stays shared.
    precision.seed = CounterHash(options.seed, static_cast<uint64_t>(comm_.rank()));
    precision.defer_gradient_rounding = true;
    GradientReducerOptions reduction = options.reduction;
    reduction.seed = options.seed;
    reduction.rounding = options.rounding;
    reducer_ = std::make_unique<GradientReducer>(model.parameters(), comm_, reduction);
  }
}

absl::Status Trainer::Synchronize() {
  if (synchronized_ || !data_parallel()) return absl::OkStatus();
  if (absl::Status s = BroadcastModelState(comm_, model_.parameters(), model_.buffers(),
                                           options_.reduction.timeout);
      !s.ok()) {
    return s;
  }
  synchronized_ = true;
  return absl::OkStatus();
}

absl::StatusOr<SoftmaxCrossEntropy::Result> Trainer::Step(const Batch& batch,
                                                          bool measure_diversity) {
  NumericPrecision& precision = model_.precision();
  if (!data_parallel()) {
    if (absl::Status s = CheckCancelled(); !s.ok()) return s;
  }
  ++precision.step;
  if (options_.offload != nullptr) return options_.offload->Step(batch);
  const Tensor& logits = model_.Forward(batch.images, Mode::kTrain);
  const SoftmaxCrossEntropy::Result r = loss_.Forward(logits, batch.labels);
  if (!data_parallel()) {
    model_.Backward(loss_.Backward());
    if (!precision.error.ok()) return precision.error;
    return r;
  }
  reducer_->BeginStep(precision.bits, precision.step, measure_diversity);
  model_.Backward(loss_.Backward(batch.global_size));
  if (absl::Status s = reducer_->FinishStep(); !s.ok()) return s;
  // Every rank stops after the same step: cancelled, or diverged on some rank.
  const absl::Status local = !precision.error.ok() ? precision.error : CheckCancelled();
  if (absl::Status s = AgreeToContinue(comm_, local, options_.reduction.timeout); !s.ok()) {
    return s;
  }
  if (measure_diversity) {
    absl::StatusOr<double> d = RankGradientDiversity(
        comm_, reducer_->local_squared_norms(), model_.parameters(), options_.reduction.timeout);
    if (!d.ok()) return d.status();
    rank_diversity_ = *d;
  }
  return r;
}

absl::StatusOr<EpochResult> Trainer::TrainEpoch(int epoch, double lr, TrainingObserver* observer) {
  if (absl::Status s = CheckOffload(); !s.ok()) return s;
  if (absl::Status s = Synchronize(); !s.ok()) return s;
  EpochResult result{.epoch = epoch, .learning_rate = lr};
  NumericPrecision& precision = model_.precision();
  const int64_t saturations_before = precision.saturations;
  const size_t routes_before = precision.route_choices.size();
  const ReductionStats reduction_before = reduction_stats();
  const bool policy_by_iterations = options_.policy_epoch_iterations > 0;
  Tally epoch_tally;
  if (policy_iterations_ == 0) {
    policy_tally_ = Tally();  // Time spent between epochs is not training.
    policy_reduction_start_ = reduction_before;
  }
  int64_t done = 0, global_samples = 0;
  const int64_t total = train_loader_.batches_per_epoch();
  train_loader_.StartEpoch(epoch);
  while (const Batch* batch = train_loader_.Next()) {
    const int bits = precision.bits;
    ++done;
    const bool policy_epoch_ends = policy_by_iterations
                                       ? policy_iterations_ + 1 == options_.policy_epoch_iterations
                                       : done == total;
    absl::StatusOr<SoftmaxCrossEntropy::Result> r =
        Step(*batch, policy_epoch_ends && data_parallel());
    if (!r.ok()) return r.status();
    if (policy_by_iterations) ++policy_iterations_;
    // The policy wants the last minibatch's gradient as the optimiser sees it: capture it
    // before the step changes the weights it adds decay from.
    if (policy_epoch_ends && controller_ != nullptr && comm_.rank() == 0 &&
        controller_->NeedsGradients()) {
      if (options_.offload != nullptr) {
        if (absl::Status s = options_.offload->DownloadParameters(); !s.ok()) return s;
      }
      pending_gradients_ = window_.Add();
    }
    if (options_.offload != nullptr) {
      if (absl::Status s = options_.offload->Update(lr); !s.ok()) return s;
    } else {
      sgd_.Step(lr);
    }
    const int64_t n = batch->images.n();
    epoch_tally.Add(*r, n);
    policy_tally_.Add(*r, n);
    result.precision_bits = bits;
    global_samples += batch->global_size;
    if (observer != nullptr) {
      // This rank's running loss; the throughput of all ranks together.
      const double elapsed = SteadySeconds() - epoch_tally.start;
      observer->OnIteration(epoch, done, total, epoch_tally.loss_sum / epoch_tally.samples,
                            global_samples / elapsed, elapsed);
    }
    if (policy_epoch_ends && policy_by_iterations && controller_ != nullptr) {
      if (absl::Status s = SumTally(policy_tally_); !s.ok()) return s;
      EpochResult metrics{
          .epoch = epoch, .precision_bits = bits, .learning_rate = lr, .test_accuracy = -1};
      policy_tally_.Fill(metrics);
      CountRoutes(metrics);
      const ReductionStats reduction = reduction_stats();
      FillCommunication(reduction, policy_reduction_start_, metrics);
      policy_reduction_start_ = reduction;
      policy_tally_ = Tally();
      policy_iterations_ = 0;
      const int next_epoch = done == total ? epoch + 1 : epoch;
      // Waiting for the decision (a coordinator that is down, say) is not training time.
      const double asked = SteadySeconds();
      if (absl::Status s = EndPolicyEpoch(metrics, bits, next_epoch, result, observer); !s.ok()) {
        return s;
      }
      const double waited = SteadySeconds() - asked;
      epoch_tally.paused += waited;
      policy_tally_.paused += waited;
    }
  }
  if (absl::Status s = SumTally(epoch_tally); !s.ok()) return s;
  epoch_tally.Fill(result);
  absl::StatusOr<double> accuracy = Evaluate();
  if (!accuracy.ok()) return accuracy.status();
  result.test_accuracy = *accuracy;
  const ReductionStats reduction = reduction_stats();
  // The layers' saturations, and the gradient codes the fixed-point allreduce clamped.
  result.saturations =
      precision.saturations - saturations_before + reduction.saturated - reduction_before.saturated;
  result.rank_gradient_diversity = rank_diversity_;
  result.route_choices.assign(precision.route_choices.begin() + routes_before,
                              precision.route_choices.end());
  CountRoutes(result);
  FillCommunication(reduction, reduction_before, result);
  if (!policy_by_iterations && controller_ != nullptr) {
    if (absl::Status s = EndPolicyEpoch(result, result.precision_bits, epoch + 1, result, observer);
        !s.ok()) {
      return s;
    }
  }
  return result;
}

absl::Status Trainer::SumTally(Tally& tally) {
  if (!data_parallel()) return absl::OkStatus();
  double values[3] = {tally.loss_sum, static_cast<double>(tally.correct),
                      static_cast<double>(tally.samples)};
  if (absl::Status s = comm_.AllReduce(std::span<double>(values), comm::ReduceOp::kSum,
                                       options_.reduction.timeout);
      !s.ok()) {
    return s;
  }
  tally.loss_sum = values[0];
  tally.correct = static_cast<int64_t>(values[1]);
  tally.samples = static_cast<int64_t>(values[2]);
  return absl::OkStatus();
}

absl::StatusOr<scheduler::Decision> Trainer::Decide(const PolicyEpochReport& report) {
  if (!data_parallel()) return controller_->EndPolicyEpoch(report);
  const absl::StatusOr<scheduler::Decision> mine =
      comm_.rank() == 0 ? controller_->EndPolicyEpoch(report) : scheduler::Decision();
  return ShareDecision(comm_, mine, options_.reduction.timeout);
}

absl::Status Trainer::EndPolicyEpoch(const EpochResult& metrics, int precision_bits, int next_epoch,
                                     EpochResult& result, TrainingObserver* observer) {
  PolicyEpochReport report{.epoch = policy_epoch_,
                           .precision_bits = precision_bits,
                           .metrics = metrics,
                           .rank_gradient_diversity = rank_diversity_};
  report.gradients = std::move(pending_gradients_);
  pending_gradients_.clear();
  absl::StatusOr<scheduler::Decision> decision = Decide(report);
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

absl::Status Trainer::CheckOffload() const {
  if (options_.offload == nullptr || !data_parallel()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("training steps offloaded (to a GPU) take one rank, not ", comm_.size()));
}

absl::Status Trainer::DownloadState() {
  return options_.offload != nullptr ? options_.offload->Download(sgd_) : absl::OkStatus();
}

absl::StatusOr<SoftmaxCrossEntropy::Result> Trainer::EvaluateBatch(const Batch& batch) {
  if (options_.offload != nullptr) return options_.offload->Evaluate(batch);
  const SoftmaxCrossEntropy::Result r =
      loss_.Forward(model_.Forward(batch.images, Mode::kEval), batch.labels);
  if (!model_.precision().error.ok()) return model_.precision().error;
  return r;
}

absl::Status Trainer::CheckCancelled() const {
  if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed)) {
    return absl::CancelledError("training cancelled");
  }
  return absl::OkStatus();
}

absl::StatusOr<double> Trainer::Evaluate() {
  if (absl::Status s = CheckOffload(); !s.ok()) return s;
  if (absl::Status s = Synchronize(); !s.ok()) return s;
  if (data_parallel()) {
    // BatchNorm's running statistics differ between ranks: evaluate rank 0's everywhere.
    if (absl::Status s =
            BroadcastModelState(comm_, {}, model_.buffers(), options_.reduction.timeout);
        !s.ok()) {
      return s;
    }
  }
  NumericPrecision& precision = model_.precision();
  int64_t correct = 0, seen = 0;
  test_loader_.StartEpoch(0);
  while (const Batch* batch = test_loader_.Next()) {
    if (absl::Status s = CheckCancelled(); !s.ok()) return s;
    ++precision.step;
    absl::StatusOr<SoftmaxCrossEntropy::Result> r = EvaluateBatch(*batch);
    if (!r.ok()) return r.status();
    correct += r->correct;
    seen += batch->images.n();
  }
  double counts[2] = {static_cast<double>(correct), static_cast<double>(seen)};
  if (data_parallel()) {
    if (absl::Status s = comm_.AllReduce(std::span<double>(counts), comm::ReduceOp::kSum,
                                         options_.reduction.timeout);
        !s.ok()) {
      return s;
    }
  }
  return counts[1] == 0 ? 0.0 : counts[0] / counts[1];
}

void Trainer::CountRoutes(EpochResult& result) const {
  for (const RouteChoice& c : model_.precision().route_choices) {
    ++(c.route == FixedPointRoute::kGrid ? result.grid_route_passes : result.integer_route_passes);
  }
}

ReductionStats Trainer::reduction_stats() const {
  return reducer_ ? reducer_->stats() : ReductionStats();
}

}  // namespace muppet
