#include "scheduler/precision_policy.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "muppet/internal/policy_state.pb.h"
#include "proto/spec_validation.h"

namespace muppet::scheduler {
namespace {

using internal::PolicyState;
using v1::PrecisionPolicySpec;

// Precision of `level` on a MUPPET ladder: the ladder's word length, or FP32 past its end.
int LadderBits(const PrecisionPolicySpec& spec, int level) {
  return level < spec.ladder_size() ? static_cast<int>(spec.ladder(level)) : kFp32Bits;
}

// Precision of policy epoch `epoch` under a SCHEDULE spec: that of the last step begun by then.
int ScheduledBits(const PrecisionPolicySpec& spec, int64_t epoch) {
  int bits = static_cast<int>(spec.schedule(0).bits());
  for (const v1::ScheduleStep& step : spec.schedule()) {
    if (step.epoch() <= epoch) bits = static_cast<int>(step.bits());
  }
  return bits;
}

absl::Status CheckStatistics(const PolicyState& state, const PolicyEpoch& epoch) {
  if (epoch.gradients.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "policy epoch ", epoch.epoch,
        ": gradient statistics are required at fixed-point levels of the MUPPET policy"));
  }
  if (state.tensor_names_size() != 0 &&
      state.tensor_names_size() != static_cast<int>(epoch.gradients.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy epoch ", epoch.epoch, ": ", epoch.gradients.size(),
                     " parameter tensors, but earlier epochs had ", state.tensor_names_size()));
  }
  for (size_t l = 0; l < epoch.gradients.size(); ++l) {
    const TensorGradient& g = epoch.gradients[l];
    if (state.tensor_names_size() != 0 && state.tensor_names(l) != g.name) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy epoch ", epoch.epoch, ": tensor ", l, " is \"", g.name,
                       "\", but earlier epochs had \"", state.tensor_names(l), "\""));
    }
    for (double value : {g.squared_norm, g.window_sum_squared_norm}) {
      if (!std::isfinite(value) || value < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("policy epoch ", epoch.epoch, ": tensor \"", g.name,
                         "\": squared norms must be finite and >= 0, got ", value));
      }
    }
  }
  return absl::OkStatus();
}

// Section 4 of the reference, steps 2-4, for one policy epoch at a fixed-point level.
void ObserveMuppet(const PolicyEpoch& epoch, PolicyState& state, Decision& decision) {
  const PrecisionPolicySpec& spec = state.spec();
  if (state.tensor_names_size() == 0) {
    for (const TensorGradient& g : epoch.gradients) {
      state.add_tensor_names(g.name);
      state.add_window_squared_norms(0.0);
    }
  }
  for (size_t l = 0; l < epoch.gradients.size(); ++l) {
    state.set_window_squared_norms(
        l, state.window_squared_norms(l) + epoch.gradients[l].squared_norm);  // A_l += ||g_l||^2
  }
  if ((epoch.epoch + 1) % spec.resolution_epochs() != 0) return;

  decision.window_closed = true;
  Diagnostics& d = decision.diagnostics;
  double sum = 0;
  int used = 0;
  for (size_t l = 0; l < epoch.gradients.size(); ++l) {
    const double b = epoch.gradients[l].window_sum_squared_norm;
    const double ratio = b > 0 ? state.window_squared_norms(l) / b : 0;
    // ||B_l||^2 == 0 (or so small that the ratio overflows) carries no diversity information.
    if (b == 0 || !std::isfinite(ratio)) {
      ++d.skipped_tensors;
      continue;
    }
    sum += ratio;
    ++used;
  }
  for (int l = 0; l < state.window_squared_norms_size(); ++l)
    state.set_window_squared_norms(l, 0.0);
  d.threshold = SwitchThreshold(spec, epoch.epoch);
  if (used == 0) return;  // Nothing to compare; ds_max and violations stay as they were.

  const double diversity = sum / used;
  d.diversity = diversity;
  if (diversity >= state.max_diversity()) {
    state.set_max_diversity(diversity);
  } else if (state.max_diversity() / diversity > *d.threshold) {
    state.set_violations(state.violations() + 1);
  }
  d.ratio = state.max_diversity() / diversity;
  d.violations = static_cast<int>(state.violations());
  if (state.violations() >= spec.patience()) {
    state.set_level(state.level() + 1);
    state.set_precision_bits(LadderBits(spec, static_cast<int>(state.level())));
    state.set_max_diversity(0);
    state.set_violations(0);
  }
}

class Policy : public PrecisionPolicy {
 public:
  explicit Policy(PolicyState state) : state_(std::move(state)) {}

  int precision_bits() const override { return static_cast<int>(state_.precision_bits()); }
  int64_t next_epoch() const override { return state_.next_epoch(); }

  bool NeedsGradients() const override {
    return state_.spec().kind() == PrecisionPolicySpec::KIND_MUPPET &&
           state_.precision_bits() != kFp32Bits;
  }

  absl::StatusOr<Decision> Observe(const PolicyEpoch& epoch) override {
    if (epoch.epoch != next_epoch()) {
      return absl::InvalidArgumentError(absl::StrCat("policy epoch out of order: expected ",
                                                     next_epoch(), ", got ", epoch.epoch));
    }
    PolicyState next = state_;
    Decision decision;
    const PrecisionPolicySpec& spec = state_.spec();
    switch (spec.kind()) {
      case PrecisionPolicySpec::KIND_MUPPET:
        if (NeedsGradients()) {
          if (absl::Status s = CheckStatistics(state_, epoch); !s.ok()) return s;
          ObserveMuppet(epoch, next, decision);
        }
        break;
      case PrecisionPolicySpec::KIND_SCHEDULE:
        next.set_precision_bits(ScheduledBits(spec, epoch.epoch + 1));
        break;
      default:  // FP32 and FIXED never change.
        break;
    }
    next.set_next_epoch(epoch.epoch + 1);
    decision.next_precision_bits = static_cast<int>(next.precision_bits());
    decision.switched = next.precision_bits() != state_.precision_bits();
    state_ = std::move(next);
    return decision;
  }

  std::string SerializeState() const override { return state_.SerializeAsString(); }

 private:
  PolicyState state_;
};

// Checks what MakePolicy and RestorePolicy rely on: a valid spec with every default applied.
absl::Status CheckSpec(const PrecisionPolicySpec& spec) {
  if (absl::Status s = ValidatePrecisionSpec(spec, std::numeric_limits<uint32_t>::max()); !s.ok()) {
    return s;
  }
  PrecisionPolicySpec with_defaults = spec;
  ApplyPrecisionDefaults(with_defaults);
  if (with_defaults.SerializeAsString() != spec.SerializeAsString()) {
    return absl::InvalidArgumentError(
        "precision policy spec: defaults must be applied first (ApplyPrecisionDefaults)");
  }
  return absl::OkStatus();
}

int InitialBits(const PrecisionPolicySpec& spec) {
  switch (spec.kind()) {
    case PrecisionPolicySpec::KIND_MUPPET:
      return LadderBits(spec, 0);
    case PrecisionPolicySpec::KIND_FIXED:
      return static_cast<int>(spec.fixed_bits());
    case PrecisionPolicySpec::KIND_SCHEDULE:
      return ScheduledBits(spec, 0);
    default:
      return kFp32Bits;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<PrecisionPolicy>> MakePolicy(const PrecisionPolicySpec& spec) {
  if (absl::Status s = CheckSpec(spec); !s.ok()) return s;
  PolicyState state;
  *state.mutable_spec() = spec;
  state.set_precision_bits(InitialBits(spec));
  return std::make_unique<Policy>(std::move(state));
}

absl::StatusOr<PrecisionPolicySpec> MeasuredLadderSpec(const PrecisionPolicySpec& spec,
                                                       const std::vector<int>& ladder) {
  if (spec.kind() != PrecisionPolicySpec::KIND_MUPPET || !spec.auto_ladder()) {
    return absl::InvalidArgumentError(
        "ladder: the job's precision policy does not ask for the auto ladder");
  }
  int next = 0;  // Index into spec.ladder() of the next level `ladder` may take.
  for (int bits : ladder) {
    while (next < spec.ladder_size() && static_cast<int>(spec.ladder(next)) != bits) ++next;
    if (next == spec.ladder_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ladder: ", bits, " bits is not a level of the job's ladder, in order, after the last"));
    }
    ++next;
  }
  PrecisionPolicySpec measured;
  if (ladder.empty()) {
    measured.set_kind(PrecisionPolicySpec::KIND_FP32);
    measured.set_rounding(spec.rounding());
    measured.set_fixed_point_route(spec.fixed_point_route());
  } else {
    measured = spec;
    measured.set_auto_ladder(false);
    measured.clear_ladder();
    for (int bits : ladder) measured.add_ladder(static_cast<uint32_t>(bits));
  }
  ApplyPrecisionDefaults(measured);
  return measured;
}

absl::StatusOr<std::unique_ptr<PrecisionPolicy>> RestorePolicy(absl::string_view bytes) {
  PolicyState state;
  if (!state.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("policy state: not a serialised muppet.internal.PolicyState");
  }
  if (absl::Status s = CheckSpec(state.spec()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("policy state: ", s.message()));
  }
  const bool muppet = state.spec().kind() == PrecisionPolicySpec::KIND_MUPPET;
  if (!IsValidPrecisionBits(state.precision_bits()) ||
      state.tensor_names_size() != state.window_squared_norms_size() ||
      (muppet && (state.level() > static_cast<uint32_t>(state.spec().ladder_size()) ||
                  LadderBits(state.spec(), static_cast<int>(state.level())) !=
                      static_cast<int>(state.precision_bits())))) {
    return absl::InvalidArgumentError("policy state: inconsistent fields");
  }
  return std::make_unique<Policy>(std::move(state));
}

double SwitchThreshold(const PrecisionPolicySpec& spec, int64_t epoch) {
  return spec.alpha() + spec.beta() * std::exp(-spec.lambda() * static_cast<double>(epoch));
}

}  // namespace muppet::scheduler
