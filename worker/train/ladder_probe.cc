#include "worker/train/ladder_probe.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "worker/nn/loss.h"

namespace muppet {
namespace {

// The fastest of `steps` timed steps at `bits`, after an untimed one.
absl::StatusOr<double> StepSeconds(Model& model, const Batch& batch, int bits, int steps) {
  NumericPrecision& precision = model.precision();
  precision.bits = bits;
  SoftmaxCrossEntropy loss;
  double best = 1e300;
  for (int i = 0; i <= steps; ++i) {
    const double start = SteadySeconds();
    ++precision.step;
    loss.Forward(model.Forward(batch.images, Mode::kTrain), batch.labels);
    model.Backward(loss.Backward());
    if (!precision.error.ok()) {
      return absl::Status(
          precision.error.code(),
          absl::StrCat("timing the ladder at ", bits, " bits: ", precision.error.message()));
    }
    if (i > 0) best = std::min(best, SteadySeconds() - start);
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
  absl::StatusOr<double> fp32 = StepSeconds(model, batch, kFp32Bits, steps);
  if (!fp32.ok()) return fp32.status();
  probe.fp32_step_seconds = *fp32;
  for (int bits : candidates) {
    absl::StatusOr<double> seconds = StepSeconds(model, batch, bits, steps);
    if (!seconds.ok()) return seconds.status();
    LevelSpeed level{.bits = bits,
                     .step_seconds = *seconds,
                     .speedup_vs_fp32 = probe.fp32_step_seconds / *seconds};
    level.kept = level.speedup_vs_fp32 > 1.0;
    if (level.kept) probe.ladder.push_back(bits);
    probe.levels.push_back(level);
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
