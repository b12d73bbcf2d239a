// Discovery of the CUDA devices on this machine, for worker registration and GPU tests.
#ifndef MUPPET_KERNELS_CUDA_DEVICE_H_
#define MUPPET_KERNELS_CUDA_DEVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace muppet::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  uint64_t memory_bytes = 0;
  int compute_capability = 0;  // major * 10 + minor, e.g. 90 for sm_90.
};

// Lists the usable CUDA devices. A machine without a GPU or driver yields an empty list, not an
// error; `why_none`, when given, then receives the runtime's explanation. Errors mean a driver
// that is present but failing.
absl::StatusOr<std::vector<DeviceInfo>> ListDevices(std::string* why_none = nullptr);

// How many devices ListDevices finds; 0, with the reason in `why_none`, when there are none or
// the driver fails (for tests that skip without a GPU).
int CountDevices(std::string* why_none);

// The current device's multiprocessor count, which sizes the kernels' grids (launch.h). INTERNAL
// naming the call that failed.
absl::StatusOr<int> CurrentSmCount();

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_DEVICE_H_
