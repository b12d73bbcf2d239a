// Loops that the element-wise and reduction kernels share, for nvcc only: a grid-stride loop
// over elements and its checked launch, and sums of lines of a matrix, one warp per line (exact
// for codes, in double for floats).
#ifndef MUPPET_KERNELS_CUDA_GRID_CUH_
#define MUPPET_KERNELS_CUDA_GRID_CUH_

#include <cuda_fp16.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/launch.h"

namespace muppet::cuda {

// f(i) for every i in [0, count), grid-striding.
template <typename F>
__device__ void GridStride(int64_t count, F&& f) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    f(i);
  }
}

// Launches `kernel`, whose threads grid-stride over `work` items, on `stream` with GridBlocks'
// geometry; INTERNAL naming the failed launch.
template <typename... Params, typename... Args>
absl::Status LaunchGridStride(void (*kernel)(Params...), int64_t work, cudaStream_t stream,
                              Args... args) {
  absl::StatusOr<int> sm_count = CurrentSmCount();
  if (!sm_count.ok()) return sm_count.status();
  kernel<<<GridBlocks(work, *sm_count), kThreads, 0, stream>>>(args...);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

// A code's integer value: int8 and int16 codes, or FP16 values that are codes (at most 12 bits);
// a float, widened to double.
__device__ inline long long CodeValue(int8_t code) { return code; }
__device__ inline long long CodeValue(int16_t code) { return code; }
__device__ inline long long CodeValue(__half code) {
  return static_cast<long long>(__half2float(code));
}
__device__ inline double CodeValue(float value) { return value; }

// f(l, sum) in lane 0 of a warp for every line l in [0, lines), sum being the sum of
// x[l * line_step + i * step] for i in [0, length) (exact in long long for codes, in double for
// floats): one warp per line, grid-striding over lines. Launch with a multiple of 32 threads per
// block.
template <typename Code, typename F>
__device__ void WarpLineSums(const Code* x, int64_t lines, int64_t length, int64_t line_step,
                             int64_t step, F&& f) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t{gridDim.x} * blockDim.x / 32;
  for (int64_t l = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32; l < lines; l += warps) {
    decltype(CodeValue(Code{})) sum = 0;
    for (int64_t i = lane; i < length; i += 32) sum += CodeValue(x[l * line_step + i * step]);
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) f(l, sum);
  }
}

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_GRID_CUH_
