// Precision policies: after each policy epoch they consume its gradient statistics and decide
// the precision of the next one. Pure logic: no I/O, no clock. The coordinator hosts one per
// job and stores SerializeState() after every decision; muppet-train runs one locally.
//
// Kinds (muppet.v1.PrecisionPolicySpec): MUPPET, the inter-epoch gradient-diversity policy of
// the MuPPET paper (docs/ALGORITHM.md, section 4); FP32; FIXED; SCHEDULE.
#ifndef MUPPET_SCHEDULER_PRECISION_POLICY_H_
#define MUPPET_SCHEDULER_PRECISION_POLICY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "muppet/v1/spec.pb.h"
#include "proto/precision.h"

namespace muppet::scheduler {

// Statistics of one parameter tensor for one policy epoch (see TensorGradientStatistics in
// proto/muppet/v1/worker.proto): g_l is the gradient of the epoch's last minibatch as the
// optimiser saw it, B_l the sum of g_l over the current window, this epoch included.
struct TensorGradient {
  std::string name;
  double squared_norm = 0;             // ||g_l||^2.
  double window_sum_squared_norm = 0;  // ||B_l||^2.
  int64_t elements = 0;                // Number of elements of the tensor.
};

// What a policy observes after policy epoch `epoch`.
struct PolicyEpoch {
  int64_t epoch = 0;  // j, from 0, consecutive over the whole run.
  // One entry per parameter tensor, in the same order every epoch. Required at fixed-point
  // levels under MUPPET (NeedsGradients()); ignored otherwise.
  std::vector<TensorGradient> gradients;
};

// The gradient-diversity policy's view of a window that closed; unset otherwise.
struct Diagnostics {
  std::optional<double> diversity;  // ds(j), the mean over tensors of A_l / ||B_l||^2.
  std::optional<double> ratio;      // p = ds_max / ds(j) (1 when ds(j) is a new maximum).
  std::optional<double> threshold;  // T(j).
  std::optional<int> violations;    // Violations since the last switch, after this window.
  int skipped_tensors = 0;          // Tensors left out because ||B_l||^2 == 0.
};

struct Decision {
  int next_precision_bits = kFp32Bits;  // Precision of policy epoch j + 1.
  bool switched = false;                // It differs from epoch j's.
  bool window_closed = false;           // Reset B_l before the next epoch.
  Diagnostics diagnostics;
};

class PrecisionPolicy {
 public:
  virtual ~PrecisionPolicy() = default;

  // The precision of the next policy epoch to train (of epoch 0 before any Observe).
  virtual int precision_bits() const = 0;

  // The index j that the next Observe must carry.
  virtual int64_t next_epoch() const = 0;

  // Whether the next Observe needs gradient statistics (MUPPET at a fixed-point level).
  virtual bool NeedsGradients() const = 0;

  // Consumes policy epoch j and decides epoch j + 1. INVALID_ARGUMENT, leaving the state
  // unchanged, for an epoch out of order, missing or inconsistent tensors, or a statistic that
  // is negative or not finite.
  virtual absl::StatusOr<Decision> Observe(const PolicyEpoch& epoch) = 0;

  // The whole state; RestorePolicy of it decides exactly as this policy would.
  virtual std::string SerializeState() const = 0;
};

// A policy for `spec` with defaults applied (ApplyJobSpecDefaults) and valid (ValidateJobSpec).
// INVALID_ARGUMENT, naming the field, for a spec it cannot run.
absl::StatusOr<std::unique_ptr<PrecisionPolicy>> MakePolicy(const v1::PrecisionPolicySpec& spec);

// The policy whose SerializeState() produced `bytes`. INVALID_ARGUMENT for bytes that are not a
// policy state.
absl::StatusOr<std::unique_ptr<PrecisionPolicy>> RestorePolicy(absl::string_view bytes);

// The hardware-aware ladder's policy: `spec` (MUPPET with auto_ladder, defaults applied) climbing
// only `ladder`, the levels measured faster than FP32, or FP32 when `ladder` is empty; defaults
// applied. INVALID_ARGUMENT unless `spec` asks for the auto ladder and `ladder` is a subsequence
// of its ladder.
absl::StatusOr<v1::PrecisionPolicySpec> MeasuredLadderSpec(const v1::PrecisionPolicySpec& spec,
                                                           const std::vector<int>& ladder);

// T(j) = alpha + beta * exp(-lambda * j) for a MUPPET spec with defaults applied.
double SwitchThreshold(const v1::PrecisionPolicySpec& spec, int64_t epoch);

}  // namespace muppet::scheduler

#endif  // MUPPET_SCHEDULER_PRECISION_POLICY_H_
