#include "worker/train/ladder_probe.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "worker/nn/loss.h"

namespace muppet {
namespace {

// One training step at `bits` (forward, loss, backward; no update), in seconds.
absl::StatusOr<double> StepSeconds(Model& model, const Batch& batch, int bits) {
  NumericPrecision& precision = model.precision();
  precision.bits = bits;
  SoftmaxCrossEntropy loss;
  const double start = SteadySeconds();
  ++precision.step;
  loss.Forward(model.Forward(batch.images, Mode::kTrain), batch.labels);
  model.Backward(loss.Backward());
  if (!precision.error.ok()) {
    return absl::Status(precision.error.code(), absl::StrCat("timing the ladder at ", bits,
                                                             " bits: ", precision.error.message()));
  }
  return SteadySeconds() - start;
}

struct Paired {
  double level = 1e300, fp32 = 1e300;  // The fastest timed step of each.
};

// Steps at `bits` and at FP32 in turn, `steps` timed of each after an untimed one at `bits`
// (which also settles its fixed-point routes), so that both see the same drift of the machine's
// speed: on these VMs it moves by up to 40% within minutes, and timing each level apart from
// FP32 flipped the 12-14-bit choices between two runs.
absl::StatusOr<Paired> PairedSeconds(Model& model, const Batch& batch, int bits, int steps) {
  if (absl::StatusOr<double> warm = StepSeconds(model, batch, bits); !warm.ok()) {
    return warm.status();
  }
  Paired best;
  for (int i = 0; i < steps; ++i) {
    absl::StatusOr<double> level = StepSeconds(model, batch, bits);
    if (!level.ok()) return level.status();
    absl::StatusOr<double> fp32 = StepSeconds(model, batch, kFp32Bits);
    if (!fp32.ok()) return fp32.status();
    best.level = std::min(best.level, *level);
    best.fp32 = std::min(best.fp32, *fp32);
  }
  return best;
}

}  // namespace

absl::StatusOr<LadderProbe> ProbeLadder(Model& model, const Batch& batch,
                                        const std::vector<int>& candidates, int steps) {
  // Forward passes in training mode move BatchNorm's running statistics: keep them.
  std::vector<Tensor> saved;
  for (const auto& [name, t] : model.buffers()) saved.push_back(t->Clone());
  const int bits_before = model.precision().bits;

  LadderProbe probe;
  if (absl::StatusOr<double> warm = StepSeconds(model, batch, kFp32Bits); !warm.ok()) {
    return warm.status();
  }
  probe.fp32_step_seconds = 1e300;
  for (int bits : candidates) {
    absl::StatusOr<Paired> seconds = PairedSeconds(model, batch, bits, steps);
    if (!seconds.ok()) return seconds.status();
    probe.fp32_step_seconds = std::min(probe.fp32_step_seconds, seconds->fp32);
    LevelSpeed level{.bits = bits,
                     .step_seconds = seconds->level,
                     .speedup_vs_fp32 = seconds->fp32 / seconds->level};
    level.kept = level.speedup_vs_fp32 > 1.0;
    if (level.kept) probe.ladder.push_back(bits);
    probe.levels.push_back(level);
  }
  for (int i = 0; candidates.empty() && i < steps; ++i) {  // No level to time FP32 alongside.
    absl::StatusOr<double> fp32 = StepSeconds(model, batch, kFp32Bits);
    if (!fp32.ok()) return fp32.status();
    probe.fp32_step_seconds = std::min(probe.fp32_step_seconds, *fp32);
  }

  model.precision().bits = bits_before;
  for (size_t i = 0; i < saved.size(); ++i) {
    std::copy(saved[i].span().begin(), saved[i].span().end(), model.buffers()[i].second->data());
  }
  for (Parameter* p : model.parameters()) p->grad.Fill(0.0f);
  return probe;
}

v1::LadderChoice ToProto(const LadderProbe& probe) {
  v1::LadderChoice choice;
  choice.set_fp32_step_seconds(probe.fp32_step_seconds);
  for (const LevelSpeed& l : probe.levels) {
    v1::LadderChoice::Level& level = *choice.add_levels();
    level.set_bits(static_cast<uint32_t>(l.bits));
    level.set_step_seconds(l.step_seconds);
    level.set_speedup_vs_fp32(l.speedup_vs_fp32);
    level.set_kept(l.kept);
  }
  for (int bits : probe.ladder) choice.add_ladder(static_cast<uint32_t>(bits));
  return choice;
}

}  // namespace muppet
