#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"

namespace muppet::cuda {

absl::StatusOr<std::vector<DeviceInfo>> ListDevices(std::string* why_none) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  // No driver (35) or no device (100) is an ordinary CPU-only machine, not a failure.
  if (error == cudaErrorInsufficientDriver || error == cudaErrorNoDevice) {
    if (why_none != nullptr) *why_none = cudaGetErrorString(error);
    cudaGetLastError();  // Clear the sticky error so later calls start clean.
    return std::vector<DeviceInfo>{};
  }
  MUPPET_CUDA_RETURN_IF_ERROR(error);
  std::vector<DeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    MUPPET_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, i));
    devices.push_back({.index = i,
                       .name = prop.name,
                       .memory_bytes = prop.totalGlobalMem,
                       .compute_capability = prop.major * 10 + prop.minor});
  }
  if (devices.empty() && why_none != nullptr) *why_none = "the driver reports 0 devices";
  return devices;
}

int CountDevices(std::string* why_none) {
  absl::StatusOr<std::vector<DeviceInfo>> devices = ListDevices(why_none);
  if (!devices.ok()) {
    *why_none = std::string(devices.status().message());
    return 0;
  }
  return static_cast<int>(devices->size());
}

absl::StatusOr<int> CurrentSmCount() {
  int device = 0, sm_count = 0;
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  MUPPET_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
  return sm_count;
}

}  // namespace muppet::cuda
