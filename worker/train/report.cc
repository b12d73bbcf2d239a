#include "worker/train/report.h"

#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "nlohmann/json.hpp"

namespace muppet {

namespace {

// A JSON number, or null when unset.
template <typename T>
nlohmann::ordered_json OrNull(const std::optional<T>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

// A data-parallel figure: null on one rank.
template <typename T>
nlohmann::ordered_json PerRanks(const RunReport& r, T value) {
  return r.ranks > 1 ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
}

}  // namespace

std::string ReportJson(const RunReport& r) {
  nlohmann::ordered_json epochs = nlohmann::ordered_json::array();
  nlohmann::ordered_json switch_epochs = nlohmann::ordered_json::array();
  nlohmann::ordered_json switches = nlohmann::ordered_json::array();
  for (const EpochResult& e : r.epochs) {
    const bool fixed_point = e.precision_bits < kFp32Bits || e.saturations > 0;
    epochs.push_back(
        {{"epoch", e.epoch},
         {"precision_bits", e.precision_bits},
         {"diversity", OrNull(e.diagnostics.diversity)},
         {"ratio", OrNull(e.diagnostics.ratio)},
         {"threshold", OrNull(e.diagnostics.threshold)},
         {"violations", OrNull(e.diagnostics.violations)},
         {"saturations",
          fixed_point ? nlohmann::ordered_json(e.saturations) : nlohmann::ordered_json(nullptr)},
         {"learning_rate", e.learning_rate},
         {"train_loss", e.train_loss},
         {"train_accuracy", e.train_accuracy},
         {"test_accuracy", e.test_accuracy},
         {"seconds", e.seconds},
         {"images_per_second", e.images_per_second},
         {"samples", e.samples},
         {"rank_gradient_diversity", PerRanks(r, e.rank_gradient_diversity)},
         {"communication_bytes", PerRanks(r, e.communication_bytes)},
         {"communication_seconds", PerRanks(r, e.communication_seconds)},
         {"communication_exposed_seconds", PerRanks(r, e.communication_exposed_seconds)}});
    for (const PrecisionSwitchEvent& s : e.switches) {
      switch_epochs.push_back(s.epoch);
      switches.push_back({{"epoch", s.epoch},
                          {"policy_epoch", s.policy_epoch},
                          {"from_bits", s.from_bits},
                          {"to_bits", s.to_bits}});
    }
  }
  nlohmann::ordered_json routes = nlohmann::ordered_json::array();
  for (const EpochResult& e : r.epochs) {
    for (const RouteChoice& c : e.route_choices) {
      routes.push_back({{"layer", c.layer},
                        {"pass", std::string(PassName(c.pass))},
                        {"shape", c.shape},
                        {"code_bits", c.code_bits},
                        {"route", std::string(RouteName(c.route))},
                        {"measured", c.measured},
                        {"integer_seconds", c.measured ? nlohmann::ordered_json(c.integer_seconds)
                                                       : nlohmann::ordered_json(nullptr)},
                        {"grid_seconds", c.measured ? nlohmann::ordered_json(c.grid_seconds)
                                                    : nlohmann::ordered_json(nullptr)}});
    }
  }
  nlohmann::ordered_json probe(nullptr);
  if (r.ladder_probe) {
    nlohmann::ordered_json levels = nlohmann::ordered_json::array();
    for (const LevelSpeed& l : r.ladder_probe->levels) {
      levels.push_back({{"bits", l.bits},
                        {"step_seconds", l.step_seconds},
                        {"speedup_vs_fp32", l.speedup_vs_fp32},
                        {"kept", l.kept}});
    }
    probe = {{"fp32_step_seconds", r.ladder_probe->fp32_step_seconds},
             {"levels", levels},
             {"ladder", r.ladder_probe->ladder}};
  }
  const nlohmann::ordered_json json = {
      {"model", r.model},
      {"dataset", r.dataset},
      {"policy", r.policy},
      {"batch_size", r.batch_size},
      {"threads", r.threads},
      {"ranks", r.ranks},
      {"seed", r.seed},
      {"epochs", epochs},
      {"fixed_point_routes", routes},
      {"ladder_probe", probe},
      {"resumed_from", r.resumed_from.empty() ? nlohmann::ordered_json(nullptr)
                                              : nlohmann::ordered_json(r.resumed_from)},
      {"final",
       {{"test_accuracy", r.final_test_accuracy},
        {"wall_seconds", r.wall_seconds},
        {"switch_epochs", switch_epochs},
        {"switches", switches}}}};
  return json.dump(2) + "\n";
}

absl::Status CheckReportPath(const std::string& path) {
  if (absl::Status s = CheckReplaceableFile(path); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--report: ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status WriteReport(const RunReport& report, const std::string& path) {
  const std::string json = ReportJson(report);
  absl::Status s =
      ReplaceFile(path, [&](int fd, const std::string& temp) { return WriteAll(fd, json, temp); });
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat("--report: ", s.message()));
  return absl::OkStatus();
}

}  // namespace muppet
