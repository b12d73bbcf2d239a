#include "server/worker_checks.h"

#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace muppet::server {
namespace {

// `value` of `field` is finite and >= 0 (and <= `max` when given).
absl::Status CheckRange(const char* field, double value, double max = INFINITY) {
  if (std::isfinite(value) && value >= 0 && value <= max) return absl::OkStatus();
  const std::string range = std::isinf(max) ? "finite and >= 0" : absl::StrCat("in [0, ", max, "]");
  return absl::InvalidArgumentError(absl::StrCat(field, ": must be ", range, ", got ", value));
}

constexpr size_t kMaxShortText = 128;  // Device and CPU model names, versions, ISA names.
constexpr int kMaxIsaFeatures = 64;
constexpr uint32_t kMaxCores = 65536;

absl::Status CheckText(const std::string& field, const std::string& value) {
  if (value.size() <= kMaxShortText) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": must be at most ", kMaxShortText, " characters, got ", value.size()));
}

absl::Status CheckCpu(const v1::CpuInfo& cpu) {
  if (cpu.cores() > kMaxCores) {
    return absl::InvalidArgumentError(
        absl::StrCat("cpu.cores: must be at most ", kMaxCores, ", got ", cpu.cores()));
  }
  if (cpu.isa_features_size() > kMaxIsaFeatures) {
    return absl::InvalidArgumentError(absl::StrCat("cpu.isa_features: at most ", kMaxIsaFeatures,
                                                   ", got ", cpu.isa_features_size()));
  }
  for (int i = 0; i < cpu.isa_features_size(); ++i) {
    if (absl::Status s = CheckText(absl::StrCat("cpu.isa_features[", i, "]"), cpu.isa_features(i));
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [field, value] : {std::pair{"cpu.model", &cpu.model()},
                                     {"cpu.kernel_isa", &cpu.kernel_isa()},
                                     {"cpu.onednn_isa", &cpu.onednn_isa()},
                                     {"cpu.int8_route", &cpu.int8_route()}}) {
    if (absl::Status s = CheckText(field, *value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckDeclaration(const v1::RegisterWorkerRequest& request) {
  if (request.devices().empty()) {
    return absl::InvalidArgumentError("devices: at least one device is required");
  }
  if (request.devices_size() > kMaxWorkerDevices) {
    return absl::InvalidArgumentError(
        absl::StrCat("devices: at most ", kMaxWorkerDevices, ", got ", request.devices_size()));
  }
  std::set<std::pair<int, uint32_t>> seen;
  for (int i = 0; i < request.devices_size(); ++i) {
    const v1::Device& d = request.devices(i);
    const std::string field = absl::StrCat("devices[", i, "]");
    if (d.kind() != v1::DEVICE_KIND_CPU && d.kind() != v1::DEVICE_KIND_CUDA) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".kind: must be CPU or CUDA, got ", d.kind()));
    }
    if (d.index() >= static_cast<uint32_t>(kMaxWorkerDevices)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".index: must be below ", kMaxWorkerDevices, ", got ", d.index()));
    }
    if (!seen.emplace(d.kind(), d.index()).second) {
      return absl::InvalidArgumentError(absl::StrCat(field,
                                                     ".index: ", v1::DeviceKind_Name(d.kind()),
                                                     " device ", d.index(), " is declared twice"));
    }
    if (absl::Status s = CheckText(field + ".name", d.name()); !s.ok()) return s;
  }
  if (absl::Status s = CheckCpu(request.cpu()); !s.ok()) return s;
  return CheckText("version", request.version());
}

absl::Status CheckEpochMetrics(const v1::EpochMetrics& m) {
  const struct {
    const char* field;
    bool present;
    double value;
    double max;
  } checks[] = {
      {"metrics.train_loss", m.has_train_loss(), m.train_loss(), INFINITY},
      {"metrics.train_accuracy", m.has_train_accuracy(), m.train_accuracy(), 1},
      {"metrics.test_accuracy", m.has_test_accuracy(), m.test_accuracy(), 1},
      {"metrics.seconds", true, m.seconds(), INFINITY},
      {"metrics.images_per_second", true, m.images_per_second(), INFINITY},
      {"metrics.learning_rate", true, m.learning_rate(), INFINITY},
      {"metrics.rank_gradient_diversity", m.has_rank_gradient_diversity(),
       m.rank_gradient_diversity(), INFINITY},
      {"metrics.allreduce_seconds", true, m.allreduce_seconds(), INFINITY},
      {"metrics.allreduce_exposed_seconds", true, m.allreduce_exposed_seconds(), INFINITY},
  };
  for (const auto& c : checks) {
    if (!c.present) continue;
    if (absl::Status s = CheckRange(c.field, c.value, c.max); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckSuccess(const v1::JobResult& result, const v1::Job& job) {
  if (absl::Status s = CheckRange("result.test_accuracy", result.test_accuracy(), 1); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange("result.train_loss", result.train_loss()); !s.ok()) return s;
  if (absl::Status s = CheckRange("result.wall_seconds", result.wall_seconds()); !s.ok()) return s;
  const uint32_t reported = job.progress().epochs_completed();
  const bool whole_epochs = job.spec().precision().policy_epoch_iterations() == 0;
  const uint32_t needed = whole_epochs ? job.spec().epochs() : 1;
  if (reported < needed) {
    return absl::FailedPreconditionError(absl::StrCat(
        "succeeded: job ", job.id(), " reported ", reported, " of its ",
        whole_epochs ? absl::StrCat(needed, " epochs") : std::string("at least 1 policy epoch"),
        "; a success needs them all"));
  }
  return absl::OkStatus();
}

}  // namespace muppet::server
