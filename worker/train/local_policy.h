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
  explicit LocalPolicyController(std::unique_ptr<scheduler::PrecisionPolicy> policy)
      : policy_(std::move(policy)) {}

  bool NeedsGradients() const override { return policy_->NeedsGradients(); }

  absl::StatusOr<scheduler::Decision> EndPolicyEpoch(const PolicyEpochReport& report) override {
    return policy_->Observe({.epoch = report.epoch, .gradients = report.gradients});
  }

  absl::StatusOr<int> AdoptPolicy(const v1::PrecisionPolicySpec& spec) override {
    absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
        scheduler::MakePolicy(spec);
    if (!policy.ok()) return policy.status();
    policy_ = *std::move(policy);
    return policy_->precision_bits();
  }

  // The precision of the next policy epoch.
  int precision_bits() const { return policy_->precision_bits(); }

 private:
  std::unique_ptr<scheduler::PrecisionPolicy> policy_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_LOCAL_POLICY_H_
