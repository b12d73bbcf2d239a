#include "worker/agent/job_log.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace muppet {

JobLog::JobLog(Logger* log, std::string job_id, RemotePrecisionController& controller, int rank)
    : log_(log), job_id_(std::move(job_id)), rank_(absl::StrCat(rank)), controller_(controller) {}

void JobLog::OnStart(const RunStart& start) {
  log_->Info("job_data_ready", {{"job", job_id_},
                                {"rank", rank_},
                                {"train_images", absl::StrCat(start.train_images)},
                                {"test_images", absl::StrCat(start.test_images)},
                                {"parameters", absl::StrCat(start.parameters)}});
}

void JobLog::OnEpochEnd(const EpochResult& r) {
  controller_.OnEvaluated(r.test_accuracy);
  LogRoutes(r);
  log_->Info("epoch_end", {{"job", job_id_},
                           {"rank", rank_},
                           {"epoch", absl::StrCat(r.epoch)},
                           {"bits", absl::StrCat(r.precision_bits)},
                           {"loss", absl::StrFormat("%.4f", r.train_loss)},
                           {"test_accuracy", absl::StrFormat("%.4f", r.test_accuracy)},
                           {"seconds", absl::StrFormat("%.2f", r.seconds)}});
}

void JobLog::LogRoutes(const EpochResult& r) {
  for (const RouteChoice& c : r.route_choices) {
    log_->Info("fixed_point_route",
               {{"job", job_id_},
                {"rank", rank_},
                {"layer", c.layer},
                {"pass", std::string(PassName(c.pass))},
                {"shape", c.shape},
                {"code_bits", absl::StrCat(c.code_bits)},
                {"route", std::string(RouteName(c.route))},
                {"integer_seconds", c.measured ? absl::StrFormat("%.6f", c.integer_seconds) : ""},
                {"grid_seconds", c.measured ? absl::StrFormat("%.6f", c.grid_seconds) : ""}});
  }
}

void JobLog::OnPrecisionSwitch(const PrecisionSwitchEvent& e) {
  log_->Info("precision_switch", {{"job", job_id_},
                                  {"rank", rank_},
                                  {"epoch", absl::StrCat(e.epoch)},
                                  {"policy_epoch", absl::StrCat(e.policy_epoch)},
                                  {"from_bits", absl::StrCat(e.from_bits)},
                                  {"to_bits", absl::StrCat(e.to_bits)}});
}

}  // namespace muppet
