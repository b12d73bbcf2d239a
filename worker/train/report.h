// The JSON run report of muppet-train (--report FILE). Field names are a stable interface:
// later versions add fields but never rename these.
#ifndef MUPPET_WORKER_TRAIN_REPORT_H_
#define MUPPET_WORKER_TRAIN_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "worker/train/ladder_probe.h"
#include "worker/train/trainer.h"

namespace muppet {

struct RunReport {
  std::string model;
  std::string dataset;
  std::string policy;
  int64_t batch_size = 0;
  int threads = 0;  // Per rank.
  int ranks = 1;
  uint64_t seed = 0;
  std::vector<EpochResult> epochs;
  std::optional<LadderProbe> ladder_probe;
  std::string resumed_from;  // The checkpoint the run continued from, if any.
  double final_test_accuracy = 0;
  double wall_seconds = 0;
};

// Returns the report as JSON text:
// {"model":..., "dataset":..., "policy":..., "batch_size":..., "threads":..., "ranks":...,
//  "seed":...,
//  "epochs":[{"epoch":0, "precision_bits":8, "diversity":..., "ratio":..., "threshold":...,
//             "violations":..., "saturations":..., "learning_rate":..., "train_loss":...,
//             "train_accuracy":..., "test_accuracy":..., "seconds":..., "images_per_second":...,
//             "samples":..., "rank_gradient_diversity":..., "communication_bytes":...,
//             "communication_seconds":..., "communication_exposed_seconds":...}, ...],
//  "fixed_point_routes":[{"layer":..., "pass":"forward", "shape":"128x16x32x32",
//                         "code_bits":8, "route":"integer", "measured":true,
//                         "integer_seconds":..., "grid_seconds":...}, ...],
//  "ladder_probe":{"fp32_step_seconds":..., "levels":[{"bits":8, "step_seconds":...,
//                  "speedup_vs_fp32":..., "kept":true}, ...], "ladder":[8]} or null,
//  "resumed_from":"PATH" or null,
//  "final":{"test_accuracy":..., "wall_seconds":..., "switch_epochs":[...],
//           "switches":[{"epoch":..., "policy_epoch":..., "from_bits":..., "to_bits":...}]}}
// precision_bits is that of the epoch's last iteration (32 for FP32). diversity, ratio,
// threshold and violations are the policy's diagnostics of the last window that closed in the
// epoch, null when none did; saturations is null for epochs trained entirely in FP32. batch_size
// is the global batch; threads are each rank's; the last four epoch fields describe rank 0's
// gradient communication and are null on one rank.
// switch_epochs lists, for each climb, the first epoch trained (at least partly) at the new
// precision. fixed_point_routes lists rank 0's route for every layer pass, input shape and code
// width, in the order chosen; the timings are null for a forced route. A resumed run reports
// the epochs it trained, from the checkpoint's on, with their switches, and resumed_from names
// the checkpoint.
std::string ReportJson(const RunReport& report);

// OK when WriteReport could write `path` now: it is a regular file or absent, in a directory
// where files can be created. INVALID_ARGUMENT naming --report and the path otherwise. Checked
// before training, so that a run is not lost to a bad path at its end.
absl::Status CheckReportPath(const std::string& path);

// Writes ReportJson to `path` atomically (base/atomic_file.h), refusing a target that is not a
// regular file (a symbolic link or a device is never replaced). Errors name --report and the
// file: INVALID_ARGUMENT for such a target, INTERNAL for a failed write.
absl::Status WriteReport(const RunReport& report, const std::string& path);

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_REPORT_H_
