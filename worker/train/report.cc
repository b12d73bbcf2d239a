#include "worker/train/report.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace muppet {

std::string ReportJson(const RunReport& r) {
  nlohmann::ordered_json epochs = nlohmann::ordered_json::array();
  for (const EpochResult& e : r.epochs) {
    epochs.push_back({{"epoch", e.epoch},
                      {"precision_bits", e.precision_bits},
                      {"learning_rate", e.learning_rate},
                      {"train_loss", e.train_loss},
                      {"train_accuracy", e.train_accuracy},
                      {"test_accuracy", e.test_accuracy},
                      {"seconds", e.seconds},
                      {"images_per_second", e.images_per_second},
                      {"samples", e.samples}});
  }
  const nlohmann::ordered_json json = {
      {"model", r.model},
      {"dataset", r.dataset},
      {"policy", r.policy},
      {"batch_size", r.batch_size},
      {"threads", r.threads},
      {"seed", r.seed},
      {"epochs", epochs},
      {"final", {{"test_accuracy", r.final_test_accuracy}, {"wall_seconds", r.wall_seconds}}}};
  return json.dump(2) + "\n";
}

absl::Status WriteReport(const RunReport& report, const std::string& path) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << ReportJson(report);
    out.close();
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("--report: cannot write ", temp, ": ", std::strerror(errno)));
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("--report: cannot rename ", temp, " to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace muppet
