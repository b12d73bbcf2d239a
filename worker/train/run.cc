#include "worker/train/run.h"

#include <chrono>
#include <new>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/message_differencer.h"
#include "proto/spec_validation.h"
#include "worker/data/dataset.h"
#include "worker/models/model.h"
#include "worker/optim/lr_schedule.h"
#include "worker/train/ladder_probe.h"
#include "worker/train/memory.h"
#include "worker/train/rank_sync.h"

#if MUPPET_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "worker/gpu/gpu_model.h"
#endif

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

// FAILED_PRECONDITION naming the checkpoint and the first difference when `spec` is not the spec
// it was written by (epochs, checkpoint interval, name, labels and priority aside), or when it
// leaves no epoch to train.
absl::Status CheckResumable(const v1::JobSpec& spec, const LoadedCheckpoint& resume) {
  v1::JobSpec saved = resume.checkpoint.state.spec(), mine = spec;
  for (v1::JobSpec* s : {&saved, &mine}) {
    s->clear_epochs();
    s->clear_checkpoint_interval_epochs();
    s->clear_name();
    s->clear_labels();
    s->clear_priority();
  }
  google::protobuf::util::MessageDifferencer differencer;
  std::string differences;
  differencer.ReportDifferencesToString(&differences);
  if (!differencer.Compare(saved, mine)) {
    const std::string first = std::string(*absl::StrSplit(differences, '\n').begin());
    return absl::FailedPreconditionError(
        absl::StrCat(resume.path, ": written by a run of another spec (", first, ")"));
  }
  const uint32_t next = resume.checkpoint.state.next_epoch();
  if (next >= spec.epochs()) {
    return absl::FailedPreconditionError(
        absl::StrCat(resume.path, ": the run it holds has trained ", next,
                     " epochs; epochs = ", spec.epochs(), " leaves none to train"));
  }
  return absl::OkStatus();
}

// Where the run stands between epochs, besides the trainer.
struct RunPosition {
  int next_epoch = 0;
  std::optional<int> first_fp32_epoch;  // The precision-aware schedule decays from it.
};

// Restores the trainer, the controller and the run's position from `resume`.
absl::Status Resume(const v1::JobSpec& spec, const LoadedCheckpoint& resume, Trainer& trainer,
                    PrecisionController& controller, RunPosition& position, RunResult& run) {
  if (absl::Status s = CheckResumable(spec, resume); !s.ok()) return s;
  const internal::TrainingState& state = resume.checkpoint.state;
  for (absl::Status s :
       {trainer.RestoreState(resume.checkpoint), controller.RestoreState(state.policy_state())}) {
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat(resume.path, ": ", s.message()));
  }
  position.next_epoch = static_cast<int>(state.next_epoch());
  if (state.has_first_fp32_epoch()) {
    position.first_fp32_epoch = static_cast<int>(state.first_fp32_epoch());
  }
  run.switch_epochs.assign(state.switch_epochs().begin(), state.switch_epochs().end());
  return absl::OkStatus();
}

// Rank 0's checkpoint after the epoch before `position.next_epoch`.
absl::StatusOr<CheckpointInfo> SaveCheckpoint(const v1::JobSpec& spec, const RunOptions& options,
                                              Trainer& trainer,
                                              const PrecisionController& controller,
                                              const RunPosition& position, const RunResult& run) {
  TrainingCheckpoint checkpoint;
  if (absl::Status s = trainer.DownloadState(); !s.ok()) return s;
  trainer.SaveState(checkpoint);
  internal::TrainingState& state = checkpoint.state;
  *state.mutable_spec() = spec;
  state.set_next_epoch(static_cast<uint32_t>(position.next_epoch));
  if (position.first_fp32_epoch) {
    state.set_first_fp32_epoch(static_cast<uint32_t>(*position.first_fp32_epoch));
  }
  for (int e : run.switch_epochs) state.add_switch_epochs(static_cast<uint32_t>(e));
  state.set_policy_state(controller.SerializeState());
  return CheckpointDirectory(options.checkpoint_dir, options.checkpoint_keep).Save(checkpoint);
}

bool CheckpointDue(const v1::JobSpec& spec, const RunOptions& options, int epoch,
                   const EpochResult& result) {
  if (options.checkpoint_dir.empty()) return false;
  if (options.comm != nullptr && options.comm->rank() != 0) return false;
  const uint32_t interval = spec.checkpoint_interval_epochs();
  return !result.switches.empty() || (interval > 0 && (epoch + 1) % interval == 0);
}

// The GPU engine for a job on CUDA devices (one rank, one GPU), or null for a CPU job.
// UNIMPLEMENTED for what it cannot run yet, naming it; FAILED_PRECONDITION when the machine
// lacks the device; INTERNAL naming a failed CUDA call.
absl::StatusOr<std::unique_ptr<StepOffload>> MakeOffload(const v1::JobSpec& spec, Model& model,
                                                         int64_t rank_batch, const SgdOptions& sgd,
                                                         const RunOptions& options) {
  if (spec.resources().device_kind() != v1::DEVICE_KIND_CUDA) return nullptr;
  if (options.comm != nullptr && options.comm->size() > 1) {
    return absl::UnimplementedError(
        "resources.device_kind: CUDA jobs train on one GPU for now; data-parallel ranks over "
        "NCCL are planned");
  }
  if (spec.precision().auto_ladder()) {
    return absl::UnimplementedError(
        "precision.auto_ladder: the hardware-aware ladder times the CPU kernels; it is not "
        "offered for CUDA jobs yet");
  }
#if MUPPET_WITH_CUDA
  std::string why;
  const int devices = cuda::CountDevices(&why);
  if (options.cuda_device < 0 || options.cuda_device >= devices) {
    return absl::FailedPreconditionError(
        absl::StrCat("resources.device_kind: CUDA, but this machine has ", devices, " CUDA devices",
                     devices == 0 ? absl::StrCat(" (", why, ")")
                                  : absl::StrCat(", not device ", options.cuda_device)));
  }
  MUPPET_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.cuda_device));
  absl::StatusOr<std::unique_ptr<gpu::GpuModel>> gpu =
      gpu::GpuModel::Create(model, rank_batch, cuda::FloatMath::kExact, sgd);
  if (!gpu.ok()) return gpu.status();
  return std::unique_ptr<StepOffload>(*std::move(gpu));
#else
  return absl::UnimplementedError(
      "resources.device_kind: CUDA, but this worker was built without CUDA");
#endif
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

namespace {

// RunTraining without its guard against std::bad_alloc.
absl::StatusOr<RunResult> Train(const v1::JobSpec& spec, int start_bits,
                                PrecisionController& controller, RunObserver* observer,
                                const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  // Each local rank holds its own copy of everything.
  const int64_t limit =
      ProcessMemoryLimit() / std::max<int64_t>(1, spec.resources().devices_per_worker());
  if (const std::optional<int64_t> bytes = SpecDatasetBytes(spec.dataset())) {
    const v1::SyntheticDataset& s = spec.dataset().synthetic();
    if (absl::Status fits =
            CheckFits(*bytes,
                      absl::StrCat("dataset.synthetic: ", s.train_size(), " + ", s.test_size(),
                                   " images of ", s.channels(), "x", s.height(), "x", s.width()),
                      limit);
        !fits.ok()) {
      return fits;
    }
  }
  absl::StatusOr<TrainTest> data =
      LoadDataset(spec.dataset(), spec.model().num_classes(), spec.seed());
  if (!data.ok()) return data.status();
  absl::StatusOr<std::unique_ptr<Model>> model = BuildModel({.name = spec.model().name(),
                                                             .in_channels = data->train.channels,
                                                             .height = data->train.height,
                                                             .width = data->train.width,
                                                             .num_classes = data->train.classes,
                                                             .seed = spec.seed()});
  if (!model.ok()) return model.status();
  (*model)->precision().bits = start_bits;
  const int64_t rank_batch = spec.batch_size() / RankCount(spec.resources());
  const MemoryEstimate memory = EstimateMemory(*data, **model, rank_batch);
  if (absl::Status fits =
          CheckFits(memory.total(),
                    absl::StrCat("dataset ", FormatBytes(memory.dataset_bytes), ", model ",
                                 FormatBytes(memory.model_bytes), ", activations at ", rank_batch,
                                 " images a step ", FormatBytes(memory.activation_bytes)),
                    limit);
      !fits.ok()) {
    return fits;
  }

  const int epochs = static_cast<int>(spec.epochs());
  const v1::PrecisionPolicySpec& precision = spec.precision();
  const Normalization normalization = Normalization::Of(data->train);
  const SgdOptions sgd{.momentum = spec.optimizer().momentum(),
                       .weight_decay = spec.optimizer().weight_decay(),
                       .nesterov = spec.optimizer().nesterov()};
  absl::StatusOr<std::unique_ptr<StepOffload>> offload =
      MakeOffload(spec, **model, rank_batch, sgd, options);
  if (!offload.ok()) return offload.status();
  Trainer trainer(
      **model, *data,
      {.epochs = epochs,
       .batch_size = spec.batch_size(),
       .augment = spec.dataset().augment(),
       .seed = spec.seed(),
       .sgd = sgd,
       .rounding = precision.rounding() == v1::ROUNDING_NEAREST ? kernels::Rounding::kNearest
                                                                : kernels::Rounding::kStochastic,
       .fixed_point_route = RouteOf(precision.fixed_point_route()),
       .policy_epoch_iterations = precision.policy_epoch_iterations(),
       .cancel = options.cancel,
       .comm = options.comm,
       .reduction = {.timeout = options.comm_timeout},
       .offload = offload->get()},
      &controller, normalization);
  RunResult run;
  RunPosition position;
  if (start_bits == kFp32Bits) position.first_fp32_epoch = 0;
  if (options.resume != nullptr) {
    if (absl::Status s = Resume(spec, *options.resume, trainer, controller, position, run);
        !s.ok()) {
      return s;
    }
  } else if (precision.auto_ladder()) {
    absl::StatusOr<int> bits =
        AdoptMeasuredLadder(spec, **model, data->train, normalization, controller, options.comm,
                            options.comm_timeout, run);
    if (!bits.ok()) return bits.status();
    (*model)->precision().bits = *bits;
    position.first_fp32_epoch.reset();
    if (*bits == kFp32Bits) position.first_fp32_epoch = 0;
    if (observer != nullptr && run.ladder_probe) observer->OnLadderProbe(*run.ladder_probe);
  }
  const LrSchedule schedule(spec.optimizer().learning_rate(), spec.lr_schedule(), epochs);
  if (observer != nullptr) {
    observer->OnStart({.train_images = data->train.size(),
                       .test_images = data->test.size(),
                       .parameters = (*model)->NumParameterElements(),
                       .memory_estimate_bytes = memory.total(),
                       .memory_limit_bytes = limit});
  }

  for (int epoch = position.next_epoch; epoch < epochs; ++epoch) {
    absl::StatusOr<EpochResult> result =
        trainer.TrainEpoch(epoch, schedule.At(epoch, position.first_fp32_epoch), observer);
    if (!result.ok()) {
      return absl::Status(result.status().code(),
                          absl::StrCat("epoch ", epoch, ": ", result.status().message()));
    }
    for (const PrecisionSwitchEvent& s : result->switches) {
      run.switch_epochs.push_back(s.epoch);
      if (s.to_bits == kFp32Bits && !position.first_fp32_epoch) {
        position.first_fp32_epoch = s.epoch;
      }
    }
    position.next_epoch = epoch + 1;
    if (CheckpointDue(spec, options, epoch, *result)) {
      absl::StatusOr<CheckpointInfo> info =
          SaveCheckpoint(spec, options, trainer, controller, position, run);
      if (!info.ok()) return info.status();
      if (absl::Status s = controller.OnCheckpoint(*info); !s.ok()) return s;
      if (observer != nullptr) observer->OnCheckpoint(*info);
    }
    run.epochs.push_back(*std::move(result));
    if (observer != nullptr) observer->OnEpochEnd(run.epochs.back());
  }
  run.final_test_accuracy = run.epochs.back().test_accuracy;
  run.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

}  // namespace

absl::StatusOr<RunResult> RunTraining(const v1::JobSpec& spec, int start_bits,
                                      PrecisionController& controller, RunObserver* observer,
                                      const RunOptions& options) {
  // The estimate is the first defence; an allocation that fails anyway fails the run, never
  // the process that hosts it (a worker serves other jobs).
  try {
    return Train(spec, start_bits, controller, observer, options);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        "out of memory while training: the job needs more memory than this process has");
  }
}

}  // namespace muppet
