// A minimal kernel that proves the cuda_library build path end to end (nvcc, SASS/PTX, cudart
// linking, launch, error checks) until the real kernels exist. Test-only.
#ifndef MUPPET_KERNELS_CUDA_SMOKE_KERNEL_H_
#define MUPPET_KERNELS_CUDA_SMOKE_KERNEL_H_

#include <vector>

#include "absl/status/statusor.h"

namespace muppet::cuda {

// Returns a * x + y computed on device 0.
absl::StatusOr<std::vector<float>> Saxpy(float a, const std::vector<float>& x,
                                         const std::vector<float>& y);

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_SMOKE_KERNEL_H_
