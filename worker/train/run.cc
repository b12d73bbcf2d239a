#include "worker/train/run.h"

#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "worker/data/dataset.h"
#include "worker/models/model.h"
#include "worker/optim/lr_schedule.h"
#include "worker/train/ladder_probe.h"

namespace muppet {
namespace {

FixedPointRoute RouteOf(v1::FixedPointRoute route) {
  switch (route) {
    case v1::FIXED_POINT_ROUTE_INTEGER:
      return FixedPointRoute::kInteger;
    case v1::FIXED_POINT_ROUTE_GRID:
      return FixedPointRoute::kGrid;
    default:
      return FixedPointRoute::kAuto;
  }
}

// The policy of `p` climbing only `ladder` (MUPPET), or FP32 when it is empty.
v1::PrecisionPolicySpec LadderPolicy(const v1::PrecisionPolicySpec& p,
                                     const std::vector<int>& ladder) {
  if (ladder.empty()) {
    v1::PrecisionPolicySpec fp32;
    fp32.set_kind(v1::PrecisionPolicySpec::KIND_FP32);
    fp32.set_rounding(p.rounding());
    fp32.set_fixed_point_route(p.fixed_point_route());
    return fp32;
  }
  v1::PrecisionPolicySpec adopted = p;
  adopted.set_auto_ladder(false);
  adopted.clear_ladder();
  for (int bits : ladder) adopted.add_ladder(static_cast<uint32_t>(bits));
  return adopted;
}

// Times the spec's ladder on the first batch, gives the controller the policy of the levels
// faster than FP32, and returns the first policy epoch's precision.
absl::StatusOr<int> AdoptMeasuredLadder(const v1::JobSpec& spec, Model& model, const Dataset& train,
                                        PrecisionController& controller, RunResult& run) {
  BatchLoader loader(train, Normalization::Of(train),
                     {.batch_size = spec.batch_size(), .shuffle = false});
  loader.StartEpoch(0);
  const Batch* first = loader.Next();
  std::vector<int> candidates(spec.precision().ladder().begin(), spec.precision().ladder().end());
  absl::StatusOr<LadderProbe> probe = ProbeLadder(model, *first, candidates);
  if (!probe.ok()) return probe.status();
  run.ladder_probe = *probe;
  return controller.AdoptPolicy(LadderPolicy(spec.precision(), probe->ladder));
}

}  // namespace

v1::JobResult ToJobResult(const RunResult& run) {
  v1::JobResult r;
  r.set_test_accuracy(run.final_test_accuracy);
  r.set_train_loss(run.epochs.back().train_loss);
  r.set_wall_seconds(run.wall_seconds);
  for (int e : run.switch_epochs) r.add_switch_epochs(static_cast<uint32_t>(e));
  return r;
}

absl::StatusOr<RunResult> RunTraining(const v1::JobSpec& spec, int start_bits,
                                      PrecisionController& controller, RunObserver* observer,
                                      const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<TrainTest> data = LoadDataset(spec.dataset(), spec.seed());
  if (!data.ok()) return data.status();
  absl::StatusOr<std::unique_ptr<Model>> model = BuildModel({.name = spec.model().name(),
                                                             .in_channels = data->train.channels,
                                                             .height = data->train.height,
                                                             .width = data->train.width,
                                                             .num_classes = data->train.classes,
                                                             .seed = spec.seed()});
  if (!model.ok()) return model.status();
  (*model)->precision().bits = start_bits;

  const int epochs = static_cast<int>(spec.epochs());
  const v1::PrecisionPolicySpec& precision = spec.precision();
  Trainer trainer(
      **model, *data,
      {.epochs = epochs,
       .batch_size = spec.batch_size(),
       .augment = spec.dataset().augment(),
       .seed = spec.seed(),
       .sgd = {.momentum = spec.optimizer().momentum(),
               .weight_decay = spec.optimizer().weight_decay(),
               .nesterov = spec.optimizer().nesterov()},
       .rounding = precision.rounding() == v1::ROUNDING_NEAREST ? kernels::Rounding::kNearest
                                                                : kernels::Rounding::kStochastic,
       .fixed_point_route = RouteOf(precision.fixed_point_route()),
       .policy_epoch_iterations = precision.policy_epoch_iterations(),
       .cancel = options.cancel,
       .comm = options.comm,
       .reduction = {.timeout = options.comm_timeout}},
      &controller);
  RunResult run;
  if (precision.auto_ladder()) {
    absl::StatusOr<int> bits = AdoptMeasuredLadder(spec, **model, data->train, controller, run);
    if (!bits.ok()) return bits.status();
    start_bits = *bits;
    (*model)->precision().bits = start_bits;
    if (observer != nullptr) observer->OnLadderProbe(*run.ladder_probe);
  }
  const LrSchedule schedule(spec.optimizer().learning_rate(), spec.lr_schedule(), epochs);
  if (observer != nullptr) {
    observer->OnStart({.train_images = data->train.size(),
                       .test_images = data->test.size(),
                       .parameters = (*model)->NumParameterElements()});
  }

  // The precision-aware learning-rate schedule decays from the first FP32 epoch.
  std::optional<int> first_fp32_epoch;
  if (start_bits == kFp32Bits) first_fp32_epoch = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    absl::StatusOr<EpochResult> result =
        trainer.TrainEpoch(epoch, schedule.At(epoch, first_fp32_epoch), observer);
    if (!result.ok()) {
      return absl::Status(result.status().code(),
                          absl::StrCat("epoch ", epoch, ": ", result.status().message()));
    }
    for (const PrecisionSwitchEvent& s : result->switches) {
      run.switch_epochs.push_back(s.epoch);
      if (s.to_bits == kFp32Bits && !first_fp32_epoch) first_fp32_epoch = s.epoch;
    }
    run.epochs.push_back(*std::move(result));
    if (observer != nullptr) observer->OnEpochEnd(run.epochs.back());
  }
  run.final_test_accuracy = run.epochs.back().test_accuracy;
  run.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

}  // namespace muppet
