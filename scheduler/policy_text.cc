#include "scheduler/policy_text.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace muppet::scheduler {
namespace {

using v1::PrecisionPolicySpec;

absl::Status Malformed(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "policy \"", text, "\": ", why,
      "; expected muppet, fp32, fixed:<bits> or schedule:<epoch>:<bits>,<epoch>:<bits>,..."));
}

}  // namespace

absl::StatusOr<PrecisionPolicySpec> ParsePolicyText(absl::string_view text) {
  const absl::string_view whole = text;
  PrecisionPolicySpec spec;
  if (text == "muppet") {
    spec.set_kind(PrecisionPolicySpec::KIND_MUPPET);
  } else if (text == "fp32") {
    spec.set_kind(PrecisionPolicySpec::KIND_FP32);
  } else if (absl::ConsumePrefix(&text, "fixed:")) {
    uint32_t bits = 0;
    if (!absl::SimpleAtoi(text, &bits)) return Malformed(whole, "<bits> is not a number");
    spec.set_kind(PrecisionPolicySpec::KIND_FIXED);
    spec.set_fixed_bits(bits);
  } else if (absl::ConsumePrefix(&text, "schedule:")) {
    spec.set_kind(PrecisionPolicySpec::KIND_SCHEDULE);
    for (absl::string_view step : absl::StrSplit(text, ',')) {
      const std::vector<absl::string_view> parts = absl::StrSplit(step, ':');
      uint32_t epoch = 0, bits = 0;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &epoch) ||
          !absl::SimpleAtoi(parts[1], &bits)) {
        return Malformed(whole, absl::StrCat("step \"", step, "\" is not <epoch>:<bits>"));
      }
      v1::ScheduleStep* s = spec.add_schedule();
      s->set_epoch(epoch);
      s->set_bits(bits);
    }
  } else {
    return Malformed(whole, "unknown policy");
  }
  return spec;
}

std::string PolicyText(const PrecisionPolicySpec& spec) {
  switch (spec.kind()) {
    case PrecisionPolicySpec::KIND_FP32:
      return "fp32";
    case PrecisionPolicySpec::KIND_FIXED:
      return absl::StrCat("fixed:", spec.fixed_bits());
    case PrecisionPolicySpec::KIND_SCHEDULE: {
      std::vector<std::string> steps;
      for (const v1::ScheduleStep& s : spec.schedule()) {
        steps.push_back(absl::StrCat(s.epoch(), ":", s.bits()));
      }
      return absl::StrCat("schedule:", absl::StrJoin(steps, ","));
    }
    default:
      return "muppet";
  }
}

}  // namespace muppet::scheduler
