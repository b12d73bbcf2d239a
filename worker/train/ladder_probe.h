// The hardware-aware ladder (PrecisionPolicySpec.auto_ladder): which fixed-point levels train
// faster than FP32 on this machine, measured on the job's own model and first batch before
// training starts.
#ifndef MUPPET_WORKER_TRAIN_LADDER_PROBE_H_
#define MUPPET_WORKER_TRAIN_LADDER_PROBE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "muppet/v1/job.pb.h"
#include "worker/data/loader.h"
#include "worker/models/model.h"

namespace muppet {

struct LevelSpeed {
  int bits = 0;
  double step_seconds = 0;     // The fastest timed training step at this level.
  double speedup_vs_fp32 = 0;  // FP32's step time (timed alongside) over this level's.
  bool kept = false;           // Faster than FP32: on the ladder.
};

struct LadderProbe {
  double fp32_step_seconds = 0;
  std::vector<LevelSpeed> levels;  // In the candidates' order.
  std::vector<int> ladder;         // The kept levels, in order; empty: FP32 only.
};

// Times training steps (forward, loss, backward; no update) of `model` on `batch`: for each of
// `candidates`, one untimed step at that level (which also settles its fixed-point routes), then
// `steps` steps at the level and `steps` at FP32 in turn, and keeps the level if its fastest step
// beats the fastest FP32 step timed alongside it (speedup_vs_fp32 is that ratio;
// fp32_step_seconds the fastest FP32 step of all; with no candidates, of `steps` FP32 steps
// alone). The model's parameters and buffers are as
// before the probe; its precision's bits are restored, its step counter advanced. Errors:
// training diverged at a level (naming it).
absl::StatusOr<LadderProbe> ProbeLadder(Model& model, const Batch& batch,
                                        const std::vector<int>& candidates, int steps = 3);

// The probe as the coordinator records it (a LadderChoice event).
v1::LadderChoice ToProto(const LadderProbe& probe);

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_LADDER_PROBE_H_
