// A PrecisionController that runs a precision policy in-process, as muppet-train does (the
// service runs it in the coordinator instead).
#ifndef MUPPET_WORKER_TRAIN_LOCAL_POLICY_H_
#define MUPPET_WORKER_TRAIN_LOCAL_POLICY_H_

#include <memory>

#include "scheduler/precision_policy.h"
#include "worker/train/trainer.h"

namespace muppet {

class LocalPolicyController : public PrecisionController {
 public:
  // `spec` is the policy's (with defaults applied), for the hardware-aware ladder.
  LocalPolicyController(std::unique_ptr<scheduler::PrecisionPolicy> policy,
                        v1::PrecisionPolicySpec spec)
      : policy_(std::move(policy)), spec_(std::move(spec)) {}

  bool NeedsGradients() const override { return policy_->NeedsGradients(); }

  absl::StatusOr<scheduler::Decision> EndPolicyEpoch(const PolicyEpochReport& report) override {
    return policy_->Observe({.epoch = report.epoch, .gradients = report.gradients});
  }

  absl::StatusOr<int> AdoptLadder(const LadderProbe& probe) override {
    absl::StatusOr<v1::PrecisionPolicySpec> measured =
        scheduler::MeasuredLadderSpec(spec_, probe.ladder);
    if (!measured.ok()) return measured.status();
    absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
        scheduler::MakePolicy(*measured);
    if (!policy.ok()) return policy.status();
    policy_ = *std::move(policy);
    spec_ = *std::move(measured);
    return policy_->precision_bits();
  }

  std::string SerializeState() const override { return policy_->SerializeState(); }

  absl::Status RestoreState(const std::string& state) override {
    absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
        scheduler::RestorePolicy(state);
    if (!policy.ok()) return policy.status();
    policy_ = *std::move(policy);
    return absl::OkStatus();
  }

  // The precision of the next policy epoch.
  int precision_bits() const { return policy_->precision_bits(); }

 private:
  std::unique_ptr<scheduler::PrecisionPolicy> policy_;
  v1::PrecisionPolicySpec spec_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_LOCAL_POLICY_H_
