#include "proto/spec_validation.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace muppet {
namespace {

using v1::JobSpec;
using v1::LrSchedule;
using v1::PrecisionPolicySpec;

constexpr uint32_t kMaxBatchSize = 65536;
constexpr uint32_t kMaxEpochs = 10000;
constexpr uint32_t kDefaultMaxRestarts = 3;
constexpr uint32_t kMaxRestarts = 100;
constexpr size_t kMaxNameLength = 128;
constexpr size_t kMaxLabels = 64;
constexpr size_t kMaxLabelKeyLength = 63;
constexpr size_t kMaxLabelValueLength = 256;
constexpr size_t kMaxPathLength = 4096;
constexpr int kMaxLadderLength = 8;
constexpr int kMaxScheduleSteps = 64;

// Collects every violated rule, each as "<prefix><field>: <message>".
class Violations {
 public:
  explicit Violations(absl::string_view prefix = "spec.") : prefix_(prefix) {}

  void Add(absl::string_view field, absl::string_view message) {
    messages_.push_back(absl::StrCat(prefix_, field, ": ", message));
  }

  template <typename T>
  void CheckRange(absl::string_view field, T value, T lo, T hi) {
    if (!(value >= lo && value <= hi)) {
      Add(field, absl::StrCat("must be in [", lo, ", ", hi, "], got ", value));
    }
  }

  // Like CheckRange, for a double that must also be finite. `lo_open` excludes lo.
  void CheckFinite(absl::string_view field, double value, double lo, double hi,
                   bool lo_open = false) {
    const bool above = lo_open ? value > lo : value >= lo;
    if (!std::isfinite(value) || !above || value > hi) {
      Add(field, absl::StrCat("must be finite and in ", lo_open ? "(" : "[", lo, ", ", hi,
                              "], got ", value));
    }
  }

  void CheckOneOf(absl::string_view field, absl::string_view value,
                  const auto& allowed) {
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      Add(field, absl::StrCat("must be one of ", absl::StrJoin(allowed, ", "), ", got \"",
                              value, "\""));
    }
  }

  absl::Status ToStatus() const {
    if (messages_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(messages_, "; "));
  }

 private:
  std::string prefix_;
  std::vector<std::string> messages_;
};

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool IsLabelKey(absl::string_view key) {
  if (key.empty() || key.size() > kMaxLabelKeyLength) return false;
  if (!IsLowerAlnum(key.front()) || !IsLowerAlnum(key.back())) return false;
  return std::all_of(key.begin(), key.end(),
                     [](char c) { return IsLowerAlnum(c) || c == '_' || c == '.' || c == '-'; });
}

// Channels of the dataset's images: IDX images are grey.
uint32_t DatasetChannels(const v1::DatasetSpec& d) {
  if (d.name() == "fashion-mnist" || d.name() == "idx") return 1;
  if (d.name() == "cifar10") return 3;
  if (d.name() == "synthetic") return d.synthetic().channels();
  return 0;
}

// A model field that is 0 (take the dataset's) or equals the dataset's `expected` where known.
void CheckMatchesDataset(const JobSpec& spec, absl::string_view field, const char* what,
                         uint32_t value, uint32_t expected, Violations& v) {
  if (value == 0 || expected == 0 || value == expected) return;
  v.Add(field, absl::StrCat("must be 0 or equal the dataset's ", what, " (", expected, " for \"",
                            spec.dataset().name(), "\"), got ", value));
}

void ValidateModel(const JobSpec& spec, Violations& v) {
  const v1::ModelSpec& model = spec.model();
  v.CheckOneOf("model.name", model.name(), kModelNames);
  if (model.input_channels() > 64) {
    v.CheckRange("model.input_channels", model.input_channels(), 1u, 64u);
  } else {
    CheckMatchesDataset(spec, "model.input_channels", "channels", model.input_channels(),
                        DatasetChannels(spec.dataset()), v);
  }
  if (model.num_classes() != 0 && (model.num_classes() < 2 || model.num_classes() > 100000)) {
    v.CheckRange("model.num_classes", model.num_classes(), 2u, 100000u);
  } else {
    CheckMatchesDataset(spec, "model.num_classes", "classes", model.num_classes(),
                        DatasetClasses(spec.dataset()), v);
  }
  if (!v1::ModelSpec::Variant_IsValid(model.variant())) {
    v.Add("model.variant", absl::StrCat("unknown value ", model.variant()));
  } else if (model.variant() != v1::ModelSpec::VARIANT_UNSPECIFIED && model.name() != "resnet18" &&
             model.name() != "googlenet") {
    v.Add("model.variant", absl::StrCat("only resnet18 and googlenet have variants, got ",
                                        v1::ModelSpec::Variant_Name(model.variant()), " for \"",
                                        model.name(), "\""));
  }
}

void ValidateSynthetic(const v1::SyntheticDataset& s, Violations& v) {
  v.CheckRange("dataset.synthetic.channels", s.channels(), 1u, 64u);
  v.CheckRange("dataset.synthetic.height", s.height(), 1u, 4096u);
  v.CheckRange("dataset.synthetic.width", s.width(), 1u, 4096u);
  v.CheckRange("dataset.synthetic.classes", s.classes(), 2u, 100000u);
  v.CheckRange("dataset.synthetic.train_size", s.train_size(), 1u, 100000000u);
  v.CheckRange("dataset.synthetic.test_size", s.test_size(), 0u, 100000000u);
}

void ValidateDataDir(const std::string& dir, Violations& v) {
  if (dir.size() > kMaxPathLength) {
    v.Add("dataset.data_dir", absl::StrCat("must be at most ", kMaxPathLength, " bytes, got ",
                                           dir.size()));
  } else if (dir.front() != '/') {
    v.Add("dataset.data_dir", absl::StrCat("must be an absolute path, got \"", dir, "\""));
  } else if (dir.find('\0') != std::string::npos ||
             absl::StrCat(dir, "/").find("/../") != std::string::npos) {
    v.Add("dataset.data_dir", absl::StrCat("must not contain \"..\" or NUL, got \"", dir, "\""));
  }
}

void ValidateDataset(const v1::DatasetSpec& d, Violations& v) {
  v.CheckOneOf("dataset.name", d.name(), kDatasetNames);
  const bool synthetic = d.name() == "synthetic";
  if (d.data_dir().empty()) {
    if (d.name() == "idx" || d.name() == "cifar10") {
      v.Add("dataset.data_dir", absl::StrCat("required for dataset \"", d.name(), "\""));
    }
  } else if (synthetic) {
    v.Add("dataset.data_dir", "must be empty for dataset \"synthetic\"");
  } else {
    ValidateDataDir(d.data_dir(), v);
  }
  if (synthetic && !d.has_synthetic()) {
    v.Add("dataset.synthetic", "required for dataset \"synthetic\"");
  } else if (synthetic) {
    ValidateSynthetic(d.synthetic(), v);
  } else if (d.has_synthetic()) {
    v.Add("dataset.synthetic", absl::StrCat("only allowed for dataset \"synthetic\", got \"",
                                            d.name(), "\""));
  }
}

void ValidateOptimizer(const v1::OptimizerSpec& o, Violations& v) {
  v.CheckFinite("optimizer.learning_rate", o.learning_rate(), 0, 10, /*lo_open=*/true);
  if (o.has_momentum() && !(std::isfinite(o.momentum()) && o.momentum() >= 0 && o.momentum() < 1)) {
    v.Add("optimizer.momentum", absl::StrCat("must be finite and in [0, 1), got ", o.momentum()));
  }
  if (o.has_weight_decay() &&
      !(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0 && o.weight_decay() < 1)) {
    v.Add("optimizer.weight_decay",
          absl::StrCat("must be finite and in [0, 1), got ", o.weight_decay()));
  }
}

void ValidateLrSchedule(const JobSpec& spec, Violations& v) {
  const LrSchedule& s = spec.lr_schedule();
  const uint32_t epochs = spec.epochs();
  switch (s.kind_case()) {
    case LrSchedule::kStep:
      v.CheckRange("lr_schedule.step.step_epochs", s.step().step_epochs(), 1u, std::max(epochs, 1u));
      v.CheckFinite("lr_schedule.step.gamma", s.step().gamma(), 0, 1, /*lo_open=*/true);
      break;
    case LrSchedule::kMultiStep: {
      const auto& milestones = s.multi_step().milestones();
      if (milestones.empty() || milestones.size() > 64) {
        v.Add("lr_schedule.multi_step.milestones",
              absl::StrCat("must have 1 to 64 entries, got ", milestones.size()));
      }
      for (int i = 0; i < milestones.size(); ++i) {
        const std::string field = absl::StrCat("lr_schedule.multi_step.milestones[", i, "]");
        if (milestones[i] < 1 || milestones[i] + 1 > epochs) {
          v.Add(field, absl::StrCat("must be in [1, epochs - 1 = ", epochs == 0 ? 0 : epochs - 1,
                                    "], got ", milestones[i]));
        } else if (i > 0 && milestones[i] <= milestones[i - 1]) {
          v.Add(field, absl::StrCat("must be greater than the previous milestone ",
                                    milestones[i - 1], ", got ", milestones[i]));
        }
      }
      v.CheckFinite("lr_schedule.multi_step.gamma", s.multi_step().gamma(), 0, 1, /*lo_open=*/true);
      break;
    }
    case LrSchedule::kCosine: {
      const double lr = spec.optimizer().learning_rate();
      const double min_lr = s.cosine().min_learning_rate();
      if (!std::isfinite(min_lr) || min_lr < 0 || min_lr > lr) {
        v.Add("lr_schedule.cosine.min_learning_rate",
              absl::StrCat("must be finite and in [0, optimizer.learning_rate = ", lr, "], got ",
                           min_lr));
      }
      break;
    }
    case LrSchedule::kPrecisionAware: {
      const auto& p = s.precision_aware();
      if (p.step_epochs() != 0) {
        v.CheckRange("lr_schedule.precision_aware.step_epochs", p.step_epochs(), 1u, kMaxEpochs);
      }
      if (p.has_gamma()) {
        v.CheckFinite("lr_schedule.precision_aware.gamma", p.gamma(), 0, 1, /*lo_open=*/true);
      }
      if (p.has_floor_ratio()) {
        v.CheckFinite("lr_schedule.precision_aware.floor_ratio", p.floor_ratio(), 0, 1,
                      /*lo_open=*/true);
      }
      break;
    }
    case LrSchedule::kConstant:
    case LrSchedule::KIND_NOT_SET:
      break;
  }
}

void ValidateLadder(const PrecisionPolicySpec& p, Violations& v) {
  const auto& ladder = p.ladder();
  if (ladder.size() > kMaxLadderLength) {
    v.Add("precision.ladder",
          absl::StrCat("must have 1 to ", kMaxLadderLength, " entries, got ", ladder.size()));
  }
  for (int i = 0; i < ladder.size(); ++i) {
    const std::string field = absl::StrCat("precision.ladder[", i, "]");
    if (ladder[i] < 2 || ladder[i] > 16) {
      v.Add(field, absl::StrCat("must be in [2, 16], got ", ladder[i]));
    } else if (i > 0 && ladder[i] <= ladder[i - 1]) {
      v.Add(field, absl::StrCat("must be greater than the previous entry ", ladder[i - 1],
                                ", got ", ladder[i]));
    }
  }
}

void ValidateMuppetParameters(const PrecisionPolicySpec& p, Violations& v) {
  if (p.has_resolution_epochs()) {
    v.CheckRange("precision.resolution_epochs", p.resolution_epochs(), 1u, 1000u);
  }
  if (p.has_patience()) v.CheckRange("precision.patience", p.patience(), 1u, 1000u);
  if (p.has_alpha()) v.CheckFinite("precision.alpha", p.alpha(), 0, 100, /*lo_open=*/true);
  if (p.has_beta()) v.CheckFinite("precision.beta", p.beta(), 0, 100);
  if (p.has_lambda()) v.CheckFinite("precision.lambda", p.lambda(), 0, 10);
  v.CheckRange("precision.policy_epoch_iterations", p.policy_epoch_iterations(), 0u, 10000000u);
  ValidateLadder(p, v);
}

// Fields that belong to the MUPPET kind only.
void RejectMuppetParameters(const PrecisionPolicySpec& p, absl::string_view kind, Violations& v) {
  const auto reject = [&](bool set, absl::string_view field) {
    if (set) v.Add(field, absl::StrCat("only allowed with kind KIND_MUPPET, got kind ", kind));
  };
  reject(!p.ladder().empty(), "precision.ladder");
  reject(p.has_resolution_epochs(), "precision.resolution_epochs");
  reject(p.has_patience(), "precision.patience");
  reject(p.has_alpha(), "precision.alpha");
  reject(p.has_beta(), "precision.beta");
  reject(p.has_lambda(), "precision.lambda");
  reject(p.policy_epoch_iterations() != 0, "precision.policy_epoch_iterations");
  reject(p.auto_ladder(), "precision.auto_ladder");
}

void ValidateSchedule(const PrecisionPolicySpec& p, uint32_t epochs, Violations& v) {
  const auto& steps = p.schedule();
  if (steps.empty() || steps.size() > kMaxScheduleSteps) {
    v.Add("precision.schedule", absl::StrCat("must have 1 to ", kMaxScheduleSteps,
                                             " steps for kind KIND_SCHEDULE, got ", steps.size()));
    return;
  }
  for (int i = 0; i < steps.size(); ++i) {
    const std::string field = absl::StrCat("precision.schedule[", i, "]");
    const auto& step = steps[i];
    if (i == 0 && step.epoch() != 0) {
      v.Add(field + ".epoch", absl::StrCat("must be 0 for the first step, got ", step.epoch()));
    } else if (i > 0 && step.epoch() <= steps[i - 1].epoch()) {
      v.Add(field + ".epoch", absl::StrCat("must be greater than the previous step's ",
                                           steps[i - 1].epoch(), ", got ", step.epoch()));
    } else if (step.epoch() >= epochs) {
      v.Add(field + ".epoch", absl::StrCat("must be below epochs = ", epochs, ", got ",
                                           step.epoch()));
    }
    if (!IsValidPrecisionBits(step.bits())) {
      v.Add(field + ".bits", absl::StrCat("must be in [2, 16] or 32, got ", step.bits()));
    } else if (i > 0 && step.bits() <= steps[i - 1].bits()) {
      v.Add(field + ".bits", absl::StrCat("must be greater than the previous step's ",
                                          steps[i - 1].bits(), " (the policy only climbs), got ",
                                          step.bits()));
    }
  }
}

void ValidatePrecision(const PrecisionPolicySpec& p, uint32_t epochs, Violations& v) {
  if (!PrecisionPolicySpec::Kind_IsValid(p.kind())) {
    v.Add("precision.kind", absl::StrCat("unknown value ", p.kind()));
    return;
  }
  if (!v1::Rounding_IsValid(p.rounding())) {
    v.Add("precision.rounding", absl::StrCat("unknown value ", p.rounding()));
  }
  if (!v1::FixedPointRoute_IsValid(p.fixed_point_route())) {
    v.Add("precision.fixed_point_route", absl::StrCat("unknown value ", p.fixed_point_route()));
  }
  const PrecisionPolicySpec::Kind kind = p.kind();
  const std::string kind_name = PrecisionPolicySpec::Kind_Name(kind);
  if (kind == PrecisionPolicySpec::KIND_MUPPET || kind == PrecisionPolicySpec::KIND_UNSPECIFIED) {
    ValidateMuppetParameters(p, v);
  } else {
    RejectMuppetParameters(p, kind_name, v);
  }
  if (kind == PrecisionPolicySpec::KIND_FIXED) {
    if (!IsValidPrecisionBits(p.fixed_bits())) {
      v.Add("precision.fixed_bits", absl::StrCat("must be in [2, 16] or 32, got ", p.fixed_bits()));
    }
  } else if (p.fixed_bits() != 0) {
    v.Add("precision.fixed_bits",
          absl::StrCat("only allowed with kind KIND_FIXED, got kind ", kind_name));
  }
  if (kind == PrecisionPolicySpec::KIND_SCHEDULE) {
    ValidateSchedule(p, epochs, v);
  } else if (!p.schedule().empty()) {
    v.Add("precision.schedule",
          absl::StrCat("only allowed with kind KIND_SCHEDULE, got kind ", kind_name));
  }
}

void ValidateResources(const JobSpec& spec, Violations& v) {
  const v1::Resources& r = spec.resources();
  if (r.workers() != 0) v.CheckRange("resources.workers", r.workers(), 1u, 1024u);
  if (r.devices_per_worker() != 0) {
    v.CheckRange("resources.devices_per_worker", r.devices_per_worker(), 1u, 64u);
  }
  if (!v1::DeviceKind_IsValid(r.device_kind())) {
    v.Add("resources.device_kind", absl::StrCat("unknown value ", r.device_kind()));
  }
  v.CheckRange("resources.cpu_threads_per_rank", r.cpu_threads_per_rank(), 0u, 1024u);
  const uint32_t ranks = RankCount(r);
  if (spec.batch_size() != 0 && spec.batch_size() % ranks != 0) {
    v.Add("batch_size", absl::StrCat("must be divisible by the number of ranks "
                                     "(resources.workers * resources.devices_per_worker = ",
                                     ranks, "), got ", spec.batch_size()));
  }
}

void ValidateLabels(const google::protobuf::Map<std::string, std::string>& map, Violations& v) {
  if (map.size() > kMaxLabels) {
    v.Add("labels",
          absl::StrCat("must have at most ", kMaxLabels, " entries, got ", map.size()));
  }
  // Sorted, so that the order of the messages does not depend on the map's order.
  std::vector<std::pair<std::string, std::string>> labels(map.begin(), map.end());
  std::sort(labels.begin(), labels.end());
  for (const auto& [key, value] : labels) {
    if (!IsLabelKey(key)) {
      v.Add("labels", absl::StrCat("key must be 1 to 63 characters from [a-z0-9_.-], starting and "
                                   "ending with [a-z0-9], got \"", key, "\""));
    }
    if (value.size() > kMaxLabelValueLength) {
      v.Add(absl::StrCat("labels[\"", key, "\"]"),
            absl::StrCat("must be at most ", kMaxLabelValueLength, " characters, got ",
                         value.size()));
    }
  }
}

}  // namespace

uint32_t DatasetClasses(const v1::DatasetSpec& d) {
  if (d.name() == "fashion-mnist" || d.name() == "cifar10") return 10;
  if (d.name() == "synthetic") return d.synthetic().classes();
  return 0;
}

uint32_t RankCount(const v1::Resources& r) {
  return std::max(r.workers(), 1u) * std::max(r.devices_per_worker(), 1u);
}


absl::Status ValidateLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  Violations v("");
  ValidateLabels(labels, v);
  return v.ToStatus();
}

bool IsValidPrecisionBits(uint32_t bits) { return (bits >= 2 && bits <= 16) || bits == static_cast<uint32_t>(kFp32Bits);
}

void ApplyPrecisionDefaults(PrecisionPolicySpec& p) {
  if (p.kind() == PrecisionPolicySpec::KIND_UNSPECIFIED) p.set_kind(PrecisionPolicySpec::KIND_MUPPET);
  if (p.rounding() == v1::ROUNDING_UNSPECIFIED) p.set_rounding(v1::ROUNDING_STOCHASTIC);
  if (p.fixed_point_route() == v1::FIXED_POINT_ROUTE_UNSPECIFIED) {
    p.set_fixed_point_route(v1::FIXED_POINT_ROUTE_AUTO);
  }
  if (p.kind() != PrecisionPolicySpec::KIND_MUPPET) return;
  if (p.ladder().empty()) {
    for (uint32_t bits : {8u, 12u, 14u, 16u}) p.add_ladder(bits);
  }
  if (!p.has_resolution_epochs()) p.set_resolution_epochs(3);
  if (!p.has_patience()) p.set_patience(2);
  if (!p.has_alpha()) p.set_alpha(1.0);
  if (!p.has_beta()) p.set_beta(1.5);
  if (!p.has_lambda()) p.set_lambda(0.1);
}

absl::Status ValidatePrecisionSpec(const PrecisionPolicySpec& spec, uint32_t epochs) {
  Violations v;
  ValidatePrecision(spec, epochs, v);
  return v.ToStatus();
}

void ApplyJobSpecDefaults(JobSpec& spec) {
  v1::OptimizerSpec& opt = *spec.mutable_optimizer();
  if (!opt.has_momentum()) opt.set_momentum(0.9);
  if (!opt.has_weight_decay()) opt.set_weight_decay(1e-4);

  if (spec.dataset().name() == "fashion-mnist" && spec.dataset().data_dir().empty()) {
    spec.mutable_dataset()->set_data_dir(std::string(kFashionMnistDir));
  }

  ApplyPrecisionDefaults(*spec.mutable_precision());
  const bool muppet = spec.precision().kind() == PrecisionPolicySpec::KIND_MUPPET;

  LrSchedule& lr = *spec.mutable_lr_schedule();
  if (lr.kind_case() == LrSchedule::KIND_NOT_SET) {
    if (muppet) {
      lr.mutable_precision_aware();
    } else {
      lr.mutable_constant();
    }
  }
  if (lr.kind_case() == LrSchedule::kPrecisionAware) {
    LrSchedule::PrecisionAware& pa = *lr.mutable_precision_aware();
    if (pa.step_epochs() == 0) pa.set_step_epochs(15);
    if (!pa.has_gamma()) pa.set_gamma(0.1);
    if (!pa.has_floor_ratio()) pa.set_floor_ratio(0.01);
  }

  v1::Resources& r = *spec.mutable_resources();
  if (r.workers() == 0) r.set_workers(1);
  if (r.devices_per_worker() == 0) r.set_devices_per_worker(1);
  if (r.device_kind() == v1::DEVICE_KIND_UNSPECIFIED) r.set_device_kind(v1::DEVICE_KIND_CPU);
  if (!spec.has_max_restarts()) spec.set_max_restarts(kDefaultMaxRestarts);
}

absl::Status ValidateJobSpec(const JobSpec& spec) {
  Violations v;
  if (spec.name().size() > kMaxNameLength ||
      !std::all_of(spec.name().begin(), spec.name().end(), IsNameChar)) {
    v.Add("name", absl::StrCat("must be at most ", kMaxNameLength,
                               " characters from [A-Za-z0-9._-], got \"", spec.name(), "\""));
  }
  ValidateModel(spec, v);
  ValidateDataset(spec.dataset(), v);
  v.CheckRange("batch_size", spec.batch_size(), 1u, kMaxBatchSize);
  v.CheckRange("epochs", spec.epochs(), 1u, kMaxEpochs);
  ValidateOptimizer(spec.optimizer(), v);
  ValidateLrSchedule(spec, v);
  ValidatePrecision(spec.precision(), spec.epochs(), v);
  ValidateResources(spec, v);
  v.CheckRange("checkpoint_interval_epochs", spec.checkpoint_interval_epochs(), 0u,
               spec.epochs());
  v.CheckRange("priority", spec.priority(), -1000, 1000);
  v.CheckRange("max_restarts", spec.max_restarts(), 0u, kMaxRestarts);
  ValidateLabels(spec.labels(), v);
  return v.ToStatus();
}

}  // namespace muppet
