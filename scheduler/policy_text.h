// The one-word text form of a precision policy, as command lines take it:
//   muppet | fp32 | fixed:<bits> | schedule:<epoch>:<bits>,<epoch>:<bits>,...
#ifndef MUPPET_SCHEDULER_POLICY_TEXT_H_
#define MUPPET_SCHEDULER_POLICY_TEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "muppet/v1/spec.pb.h"

namespace muppet::scheduler {

// The spec that `text` names: its kind, plus fixed_bits or schedule. Parameters of the MUPPET
// kind are left unset (defaults). INVALID_ARGUMENT quoting the text otherwise; the values
// themselves are checked by ValidatePrecisionSpec.
absl::StatusOr<v1::PrecisionPolicySpec> ParsePolicyText(absl::string_view text);

// The text form of `spec`'s kind and steps (the inverse of ParsePolicyText).
std::string PolicyText(const v1::PrecisionPolicySpec& spec);

}  // namespace muppet::scheduler

#endif  // MUPPET_SCHEDULER_POLICY_TEXT_H_
