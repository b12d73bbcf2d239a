// Defaults and validation rules of muppet.v1.JobSpec, as documented in proto/muppet/v1/spec.proto.
// The coordinator applies the defaults, validates, and stores the explicit result; the client may
// validate before it sends.
#ifndef MUPPET_PROTO_SPEC_VALIDATION_H_
#define MUPPET_PROTO_SPEC_VALIDATION_H_

#include <array>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "muppet/v1/spec.pb.h"
#include "proto/precision.h"

namespace muppet {

// Models that ModelSpec.name may name.
inline constexpr std::array<absl::string_view, 5> kModelNames = {"lenet5", "resnet20", "alexnet",
                                                                 "resnet18", "googlenet"};
// Datasets that DatasetSpec.name may name.
inline constexpr std::array<absl::string_view, 4> kDatasetNames = {"fashion-mnist", "idx",
                                                                   "cifar10", "synthetic"};

inline constexpr absl::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// The classes a dataset has by its definition: 10 for fashion-mnist and cifar10,
// synthetic.classes; 0 for idx (only its label file tells) and unknown names.
uint32_t DatasetClasses(const v1::DatasetSpec& dataset);

// Fills every unset field that has a documented default. Idempotent; leaves set values, valid or
// not, untouched, so validation afterwards still reports what the user wrote.
void ApplyJobSpecDefaults(v1::JobSpec& spec);

// Returns OK if `spec` obeys every rule, else INVALID_ARGUMENT whose message lists each violation
// as "spec.<field>: <rule>, got <value>", joined by "; ". Unset fields with defaults are valid.
absl::Status ValidateJobSpec(const v1::JobSpec& spec);

// Fills the unset fields of a precision policy that have documented defaults (part of
// ApplyJobSpecDefaults).
void ApplyPrecisionDefaults(v1::PrecisionPolicySpec& spec);

// ValidateJobSpec's rules for JobSpec.precision alone, in a job of `epochs` epochs; messages
// name fields as "spec.precision.<field>".
absl::Status ValidatePrecisionSpec(const v1::PrecisionPolicySpec& spec, uint32_t epochs);

// JobSpec.labels' rules for any label map (worker labels too); messages name "labels".
absl::Status ValidateLabels(const google::protobuf::Map<std::string, std::string>& labels);

// Returns true for a word length a precision may take: [2, 16] fixed point, or 32 (FP32).
bool IsValidPrecisionBits(uint32_t bits);

// The ranks a job with these resources trains on: workers x devices per worker, 0 meaning 1 for
// either.
uint32_t RankCount(const v1::Resources& resources);

}  // namespace muppet

#endif  // MUPPET_PROTO_SPEC_VALIDATION_H_
