// What the GPU benchmarks share besides harness.h: CUDA errors fail the benchmark loudly, and
// device time from CUDA events.
#ifndef MUPPET_BENCH_CUDA_HARNESS_H_
#define MUPPET_BENCH_CUDA_HARNESS_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/harness.h"
#include "kernels/cuda/device.h"

namespace muppet::bench {

inline constexpr int kDeviceRepeats = 10;

// Fail()s naming `what` unless the CUDA call succeeded.
inline void CheckCuda(cudaError_t error, const char* what) {
  if (error != cudaSuccess) Fail(absl::StrCat(what, ": ", cudaGetErrorString(error)));
}

// The value, or Fail() naming `what`.
template <typename T>
T Check(absl::StatusOr<T> value, const std::string& what) {
  CheckOk(value.status(), what);
  return *std::move(value);
}

// The fastest of kDeviceRepeats runs of `fn` on the default stream (after one untimed run), in
// seconds of device time.
template <typename Fn>
double BestDeviceSeconds(Fn&& fn) {
  cudaEvent_t start, stop;
  CheckCuda(cudaEventCreate(&start), "cudaEventCreate");
  CheckCuda(cudaEventCreate(&stop), "cudaEventCreate");
  fn();  // Warm-up.
  float best = 1e30f;
  for (int i = 0; i < kDeviceRepeats; ++i) {
    CheckCuda(cudaEventRecord(start), "cudaEventRecord");
    fn();
    CheckCuda(cudaEventRecord(stop), "cudaEventRecord");
    CheckCuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    CheckCuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    best = std::min(best, ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best / 1e3;
}

// The first line of every GPU benchmark: the device it runs on (the first one). Fail()s when
// there is none.
inline void PrintGpu(const std::string& bench) {
  std::string why;
  absl::StatusOr<std::vector<cuda::DeviceInfo>> devices = cuda::ListDevices(&why);
  CheckOk(devices.status(), "ListDevices");
  if (devices->empty()) Fail(absl::StrCat("no CUDA device: ", why));
  JsonLine().Add("bench", bench).Add("gpu", devices->front().name).Print();
}

}  // namespace muppet::bench

#endif  // MUPPET_BENCH_CUDA_HARNESS_H_
