// Launch geometry of the CUDA kernels, as plain C++ so that it is tested on any machine.
#ifndef MUPPET_KERNELS_CUDA_LAUNCH_H_
#define MUPPET_KERNELS_CUDA_LAUNCH_H_

#include <algorithm>
#include <cstdint>

namespace muppet::cuda {

// Threads per block of the element-wise and reduction kernels.
inline constexpr int kThreads = 256;

// Blocks for `work` items of one thread each, grid-striding past `per_sm` blocks per SM: enough
// to fill the device, never more than the work needs, at least 1.
inline int GridBlocks(int64_t work, int sm_count, int per_sm = 8) {
  const int64_t needed = (work + kThreads - 1) / kThreads;
  return static_cast<int>(std::clamp<int64_t>(needed, 1, int64_t{std::max(sm_count, 1)} * per_sm));
}

// The quantiser's threads: one per Philox counter, which serves eight elements (a block of 128
// elements has 16 counters, kernels/common/fixed_point_element.h).
inline int64_t QuantizeCounters(int64_t n) { return (n + 127) / 128 * 16; }

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_LAUNCH_H_
