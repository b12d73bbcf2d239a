// Job files for `muppetctl submit --file`: a JobSpec in YAML or JSON, with the field names of
// proto/muppet/v1/spec.proto (snake_case or lowerCamelCase) and enum values by name, e.g.
//
//   model: {name: lenet5}
//   dataset: {name: fashion-mnist, train_limit: 6000}
//   batch_size: 64
//   epochs: 5
//   optimizer: {learning_rate: 0.05}
//   precision: {kind: KIND_MUPPET, policy_epoch_iterations: 40}
#ifndef MUPPET_CLIENT_JOB_FILE_H_
#define MUPPET_CLIENT_JOB_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "muppet/v1/spec.pb.h"

namespace muppet::client {

// Parses `text` as a JobSpec. YAML unless `path` ends in ".json" (JSON is YAML too, but its
// own parser gives better messages). Errors name `path`, and the line for syntax errors.
absl::StatusOr<v1::JobSpec> ParseJobFile(const std::string& path, const std::string& text);

// Reads and parses the file at `path`.
absl::StatusOr<v1::JobSpec> ReadJobFile(const std::string& path);

}  // namespace muppet::client

#endif  // MUPPET_CLIENT_JOB_FILE_H_
