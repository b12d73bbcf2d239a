#include "worker/train/run.h"

#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "worker/data/dataset.h"
#include "worker/models/model.h"
#include "worker/optim/lr_schedule.h"
#include "worker/train/ladder_probe.h"
#include "worker/train/rank_sync.h"

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

// Times the spec's ladder on the first batch and has the controller adopt the levels faster
// than FP32; returns the first policy epoch's precision. Data parallel, rank 0 measures and
// adopts, and every rank gets its answer or its error (BroadcastResult).
absl::StatusOr<int> AdoptMeasuredLadder(const v1::JobSpec& spec, Model& model, const Dataset& train,
                                        const Normalization& normalization,
                                        PrecisionController& controller, comm::Communicator* comm,
                                        absl::Duration timeout, RunResult& run) {
  absl::StatusOr<int> bits = absl::UnknownError("not adopted");
  if (comm == nullptr || comm->rank() == 0) {
    BatchLoader loader(train, normalization, {.batch_size = spec.batch_size(), .shuffle = false});
    loader.StartEpoch(0);
    std::vector<int> candidates(spec.precision().ladder().begin(), spec.precision().ladder().end());
    absl::StatusOr<LadderProbe> probe = ProbeLadder(model, *loader.Next(), candidates);
    bits = probe.ok() ? controller.AdoptLadder(*probe) : probe.status();
    if (probe.ok()) run.ladder_probe = *probe;
  }
  if (comm == nullptr || comm->size() == 1) return bits;
  const absl::StatusOr<std::vector<int64_t>> mine =
      bits.ok() ? absl::StatusOr<std::vector<int64_t>>(std::vector<int64_t>{*bits}) : bits.status();
  absl::StatusOr<std::vector<int64_t>> shared = BroadcastResult(*comm, mine, 1, timeout);
  if (!shared.ok()) return shared.status();
  return static_cast<int>(shared->front());
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
  const Normalization normalization = Normalization::Of(data->train);
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
      &controller, normalization);
  RunResult run;
  if (precision.auto_ladder()) {
    absl::StatusOr<int> bits =
        AdoptMeasuredLadder(spec, **model, data->train, normalization, controller, options.comm,
                            options.comm_timeout, run);
    if (!bits.ok()) return bits.status();
    start_bits = *bits;
    (*model)->precision().bits = start_bits;
    if (observer != nullptr && run.ladder_probe) observer->OnLadderProbe(*run.ladder_probe);
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
