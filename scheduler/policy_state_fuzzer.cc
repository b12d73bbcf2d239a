// Fuzzes the restore of a stored policy state: any bytes give a policy or an error, and a
// restored policy's own state restores to the same state.
#include <cstdint>
#include <cstdlib>

#include "scheduler/precision_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::unique_ptr<muppet::scheduler::PrecisionPolicy>> policy =
      muppet::scheduler::RestorePolicy(bytes);
  if (!policy.ok()) return 0;
  const std::string state = (*policy)->SerializeState();
  absl::StatusOr<std::unique_ptr<muppet::scheduler::PrecisionPolicy>> again =
      muppet::scheduler::RestorePolicy(state);
  if (!again.ok() || (*again)->SerializeState() != state) std::abort();
  return 0;
}
