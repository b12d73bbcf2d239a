// Fuzzes the job file parser (YAML and JSON) and the validation of what it parses: any bytes
// give a JobSpec or an error, never a crash, and a parsed spec validates without one.
#include <cstdint>
#include <string>

#include "client/job_file.h"
#include "proto/spec_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const char* path : {"fuzz.yaml", "fuzz.json"}) {
    absl::StatusOr<muppet::v1::JobSpec> spec = muppet::client::ParseJobFile(path, text);
    if (!spec.ok()) continue;
    muppet::ApplyJobSpecDefaults(*spec);
    (void)muppet::ValidateJobSpec(*spec);
  }
  return 0;
}
