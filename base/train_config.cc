#include "base/train_config.h"

#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "proto/spec_validation.h"
#include "scheduler/policy_text.h"

namespace muppet {
namespace {

constexpr char kScheduleForms[] =
    "constant, step:<epochs>:<gamma>, multistep:<e1>,<e2>,...:<gamma>, cosine[:<min-lr>] or "
    "precision-aware[:<step-epochs>:<gamma>]";

// Spec fields the flags set, and the flag that sets each.
const std::vector<std::pair<std::string, std::string>>& FieldFlags() {
  static const auto* map = new std::vector<std::pair<std::string, std::string>>{
      {"spec.model.name", "--model"},
      {"spec.model.num_classes", "--num-classes"},
      {"spec.dataset.name", "--dataset"},
      {"spec.dataset.data_dir", "--data-dir"},
      {"spec.dataset.synthetic", "--synthetic"},
      {"spec.dataset.train_limit", "--train-limit"},
      {"spec.dataset.test_limit", "--test-limit"},
      {"spec.batch_size", "--batch-size"},
      {"spec.epochs", "--epochs"},
      {"spec.optimizer.learning_rate", "--lr"},
      {"spec.optimizer.momentum", "--momentum"},
      {"spec.optimizer.weight_decay", "--weight-decay"},
      {"spec.lr_schedule", "--lr-schedule"},
      {"spec.precision.kind", "--policy"},
      {"spec.precision.fixed_bits", "--policy"},
      {"spec.precision.schedule", "--policy"},
      {"spec.precision.rounding", "--rounding"},
      {"spec.precision.fixed_point_route", "--fixed-point-route"},
      {"spec.precision.ladder", "--ladder"},
      {"spec.precision.auto_ladder", "--ladder"},
      {"spec.precision.resolution_epochs", "--resolution"},
      {"spec.precision.patience", "--patience"},
      {"spec.precision.alpha", "--alpha"},
      {"spec.precision.beta", "--beta"},
      {"spec.precision.lambda", "--lambda"},
      {"spec.precision.policy_epoch_iterations", "--policy-epoch-iterations"},
      {"spec.resources.workers", "--workers"},
      {"spec.resources.devices_per_worker", "--devices-per-worker"},
      {"spec.resources.device_kind", "--device"},
  };
  return *map;
}

// Rewrites "spec.batch_size: ..." as "--batch-size: ..." in a validation message.
std::string NameFlags(std::string message) {
  for (const auto& [field, flag] : FieldFlags()) {
    message = absl::StrReplaceAll(
        message, {{field + ":", flag + ":"}, {field + ".", flag + "."}, {field + "[", flag + "["}});
  }
  return message;
}

absl::Status ScheduleError(const std::string& text) {
  return absl::InvalidArgumentError(
      absl::StrCat("--lr-schedule: expected ", kScheduleForms, ", got \"", text, "\""));
}

// INVALID_ARGUMENT naming the first flag that becomes an unsigned spec field and is negative
// (narrowed, it would read as a huge count).
absl::Status CheckNotNegative(const TrainFlags& f) {
  const std::pair<const char*, int64_t> counts[] = {
      {"train-limit", f.train_limit},
      {"test-limit", f.test_limit},
      {"num-classes", f.num_classes},
      {"epochs", f.epochs},
      {"batch-size", f.batch_size},
      {"resolution", f.resolution},
      {"patience", f.patience},
      {"workers", f.workers},
      {"devices-per-worker", f.devices_per_worker},
      {"checkpoint-interval-epochs", f.checkpoint_interval_epochs},
      {"policy-epoch-iterations", f.policy_epoch_iterations}};
  for (const auto& [flag, value] : counts) {
    if (value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": must not be negative, got ", value));
    }
  }
  return absl::OkStatus();
}

// Narrows a non-negative flag to uint32 for the spec; values past uint32 become UINT32_MAX so
// that validation reports them with the flag's range.
uint32_t Narrow(int64_t v) {
  return v < 0 || v > std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                           : static_cast<uint32_t>(v);
}

// --device: cpu | cuda.
absl::StatusOr<v1::DeviceKind> DeviceKindOf(const std::string& device) {
  if (device == "cpu") return v1::DEVICE_KIND_CPU;
  if (device == "cuda") return v1::DEVICE_KIND_CUDA;
  return absl::InvalidArgumentError(
      absl::StrCat("--device: expected cpu or cuda, got \"", device, "\""));
}

// The precision policy the flags describe, before defaults and validation.
absl::Status SetPrecision(const TrainFlags& flags, v1::PrecisionPolicySpec& p) {
  absl::StatusOr<v1::PrecisionPolicySpec> policy = scheduler::ParsePolicyText(flags.policy);
  if (!policy.ok())
    return absl::InvalidArgumentError(absl::StrCat("--policy: ", policy.status().message()));
  p = *std::move(policy);
  if (flags.rounding == "stochastic") {
    p.set_rounding(v1::ROUNDING_STOCHASTIC);
  } else if (flags.rounding == "nearest") {
    p.set_rounding(v1::ROUNDING_NEAREST);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--rounding: expected stochastic or nearest, got \"", flags.rounding, "\""));
  }
  if (flags.fixed_point_route == "auto") {
    p.set_fixed_point_route(v1::FIXED_POINT_ROUTE_AUTO);
  } else if (flags.fixed_point_route == "integer") {
    p.set_fixed_point_route(v1::FIXED_POINT_ROUTE_INTEGER);
  } else if (flags.fixed_point_route == "grid") {
    p.set_fixed_point_route(v1::FIXED_POINT_ROUTE_GRID);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--fixed-point-route: expected auto, integer or grid, got \"",
                     flags.fixed_point_route, "\""));
  }
  if (flags.ladder == "auto") {
    p.set_auto_ladder(true);
  } else if (!flags.ladder.empty()) {
    for (absl::string_view step : absl::StrSplit(flags.ladder, ',')) {
      uint32_t bits;
      if (!absl::SimpleAtoi(step, &bits)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--ladder: expected word lengths separated by commas, e.g. 8,12,14,16, got \"",
            flags.ladder, "\""));
      }
      p.add_ladder(bits);
    }
  }
  if (flags.resolution != 0) p.set_resolution_epochs(Narrow(flags.resolution));
  if (flags.patience != 0) p.set_patience(Narrow(flags.patience));
  if (flags.alpha) p.set_alpha(*flags.alpha);
  if (flags.beta) p.set_beta(*flags.beta);
  if (flags.lambda) p.set_lambda(*flags.lambda);
  p.set_policy_epoch_iterations(Narrow(flags.policy_epoch_iterations));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::SyntheticDataset> ParseSynthetic(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, ',');
  const std::vector<std::string> dims =
      parts.empty() ? std::vector<std::string>{} : absl::StrSplit(parts[0], 'x');
  uint32_t values[6];
  bool ok = parts.size() == 4 && dims.size() == 3;
  for (int i = 0; ok && i < 6; ++i) {
    ok = absl::SimpleAtoi(i < 3 ? dims[i] : parts[i - 2], &values[i]);
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--synthetic: expected <channels>x<height>x<width>,<classes>,<train>,<test>, got \"", text,
        "\""));
  }
  v1::SyntheticDataset s;
  s.set_channels(values[0]);
  s.set_height(values[1]);
  s.set_width(values[2]);
  s.set_classes(values[3]);
  s.set_train_size(values[4]);
  s.set_test_size(values[5]);
  return s;
}

absl::StatusOr<v1::LrSchedule> ParseLrSchedule(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, ':');
  v1::LrSchedule s;
  if (parts[0] == "constant" && parts.size() == 1) {
    s.mutable_constant();
  } else if (parts[0] == "step" && parts.size() == 3) {
    uint32_t epochs;
    double gamma;
    if (!absl::SimpleAtoi(parts[1], &epochs) || !absl::SimpleAtod(parts[2], &gamma)) {
      return ScheduleError(text);
    }
    s.mutable_step()->set_step_epochs(epochs);
    s.mutable_step()->set_gamma(gamma);
  } else if (parts[0] == "multistep" && parts.size() == 3) {
    for (absl::string_view m : absl::StrSplit(parts[1], ',')) {
      uint32_t epoch;
      if (!absl::SimpleAtoi(m, &epoch)) return ScheduleError(text);
      s.mutable_multi_step()->add_milestones(epoch);
    }
    double gamma;
    if (!absl::SimpleAtod(parts[2], &gamma)) return ScheduleError(text);
    s.mutable_multi_step()->set_gamma(gamma);
  } else if (parts[0] == "precision-aware" && (parts.size() == 1 || parts.size() == 3)) {
    v1::LrSchedule::PrecisionAware& p = *s.mutable_precision_aware();
    if (parts.size() == 3) {
      uint32_t epochs;
      double gamma;
      if (!absl::SimpleAtoi(parts[1], &epochs) || !absl::SimpleAtod(parts[2], &gamma)) {
        return ScheduleError(text);
      }
      p.set_step_epochs(epochs);
      p.set_gamma(gamma);
    }
  } else if (parts[0] == "cosine" && parts.size() <= 2) {
    double min_lr = 0;
    if (parts.size() == 2 && !absl::SimpleAtod(parts[1], &min_lr)) return ScheduleError(text);
    s.mutable_cosine()->set_min_learning_rate(min_lr);
  } else {
    return ScheduleError(text);
  }
  return s;
}

absl::StatusOr<v1::JobSpec> SpecFromFlags(const TrainFlags& flags) {
  if (absl::Status s = CheckNotNegative(flags); !s.ok()) return s;
  v1::JobSpec spec;
  spec.mutable_model()->set_name(flags.model);
  spec.mutable_model()->set_num_classes(Narrow(flags.num_classes));
  v1::DatasetSpec& d = *spec.mutable_dataset();
  d.set_name(flags.dataset);
  d.set_data_dir(flags.data_dir);
  d.set_augment(flags.augment);
  if (!flags.synthetic.empty()) {
    absl::StatusOr<v1::SyntheticDataset> synthetic = ParseSynthetic(flags.synthetic);
    if (!synthetic.ok()) return synthetic.status();
    *d.mutable_synthetic() = *std::move(synthetic);
  }
  d.set_train_limit(Narrow(flags.train_limit));
  d.set_test_limit(Narrow(flags.test_limit));
  spec.set_epochs(Narrow(flags.epochs));
  spec.set_batch_size(Narrow(flags.batch_size));
  spec.mutable_optimizer()->set_learning_rate(flags.lr);
  spec.mutable_optimizer()->set_momentum(flags.momentum);
  spec.mutable_optimizer()->set_weight_decay(flags.weight_decay);
  if (!flags.lr_schedule.empty()) {
    absl::StatusOr<v1::LrSchedule> schedule = ParseLrSchedule(flags.lr_schedule);
    if (!schedule.ok()) return schedule.status();
    *spec.mutable_lr_schedule() = *std::move(schedule);
  }
  spec.set_seed(static_cast<uint64_t>(flags.seed));
  spec.set_checkpoint_interval_epochs(Narrow(flags.checkpoint_interval_epochs));
  spec.mutable_resources()->set_workers(Narrow(flags.workers));
  spec.mutable_resources()->set_devices_per_worker(Narrow(flags.devices_per_worker));
  absl::StatusOr<v1::DeviceKind> device = DeviceKindOf(flags.device);
  if (!device.ok()) return device.status();
  spec.mutable_resources()->set_device_kind(*device);
  if (absl::Status s = SetPrecision(flags, *spec.mutable_precision()); !s.ok()) return s;
  ApplyJobSpecDefaults(spec);
  if (absl::Status s = ValidateJobSpec(spec); !s.ok()) {
    return absl::InvalidArgumentError(NameFlags(std::string(s.message())));
  }
  return spec;
}

}  // namespace muppet
