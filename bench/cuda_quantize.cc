// The CUDA quantiser against the device's copy bandwidth, on a 256 MiB FP32 tensor: codes are
// validated against the CPU quantiser first (every element), then the quantiser (range, exponent
// and codes: 4 bytes read twice, 1 or 2 written per element) and a device-to-device copy of the
// tensor (4 read, 4 written) are each timed with CUDA events, best of 20. One JSON line per word
// length, with the quantiser's bytes per second as a fraction of the copy's.
//   bazel run -c opt //bench:cuda_quantize
#include <cuda_runtime.h>

#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/harness.h"
#include "kernels/cpu/quantize.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/quantize.h"

namespace muppet::bench {
namespace {

constexpr int64_t kElements = int64_t{64} << 20;
constexpr int kRepeats = 20;

void CheckCuda(cudaError_t error, const char* what) {
  if (error != cudaSuccess) Fail(absl::StrCat(what, ": ", cudaGetErrorString(error)));
}

// The best time of `repeats` runs of `fn` on the default stream, in seconds.
template <typename Fn>
double BestDeviceSeconds(Fn&& fn) {
  cudaEvent_t start, stop;
  CheckCuda(cudaEventCreate(&start), "cudaEventCreate");
  CheckCuda(cudaEventCreate(&stop), "cudaEventCreate");
  fn();  // Warm-up.
  float best = 1e30f;
  for (int i = 0; i < kRepeats; ++i) {
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

template <typename Code>
void Run(int word_length, const std::vector<float>& x, const float* dx, double copy_seconds,
         cuda::QuantizeWorkspace& workspace) {
  Code* dcodes = nullptr;
  CheckCuda(cudaMalloc(&dcodes, kElements * sizeof(Code)), "cudaMalloc(codes)");
  const cuda::QuantizeSpec spec{.word_length = word_length, .seed = 42, .stream = 1};
  absl::StatusOr<cuda::QuantizeResult> r =
      cuda::Quantize(dx, kElements, spec, dcodes, workspace, nullptr);
  CheckOk(r.status(), "cuda::Quantize");
  // Validation: every code, the exponent and the saturations, against the CPU.
  std::vector<Code> gpu(kElements), cpu(kElements);
  CheckCuda(cudaMemcpy(gpu.data(), dcodes, kElements * sizeof(Code), cudaMemcpyDeviceToHost),
            "cudaMemcpy(codes)");
  const int exponent = kernels::ScaleExponent(*kernels::MinMax(x), word_length);
  const int64_t saturations = kernels::Quantize(
      x, {.word_length = word_length, .exponent = exponent, .seed = 42, .stream = 1}, cpu);
  if (r->exponent != exponent || r->saturations != saturations || gpu != cpu) {
    Fail(absl::StrCat(word_length, " bits: the device's codes differ from the CPU's"));
  }
  const double seconds = BestDeviceSeconds([&] {
    CheckOk(cuda::Quantize(dx, kElements, spec, dcodes, workspace, nullptr).status(),
            "cuda::Quantize");
  });
  // The range pass reads the tensor, the code pass reads it again and writes the codes.
  const double bytes = static_cast<double>(kElements) * (2 * sizeof(float) + sizeof(Code));
  const double copy_bytes_per_second = 2.0 * kElements * sizeof(float) / copy_seconds;
  JsonLine()
      .Add("bench", "cuda_quantize")
      .Add("word_length", word_length)
      .Add("elements", static_cast<long long>(kElements))
      .Add("seconds", seconds)
      .Add("bytes_per_second", bytes / seconds)
      .Add("copy_bytes_per_second", copy_bytes_per_second)
      .Add("fraction_of_copy", bytes / seconds / copy_bytes_per_second)
      .Add("validated", true)
      .Print();
  cudaFree(dcodes);
}

int Main() {
  std::string why;
  absl::StatusOr<std::vector<cuda::DeviceInfo>> devices = cuda::ListDevices(&why);
  CheckOk(devices.status(), "ListDevices");
  if (devices->empty()) Fail(absl::StrCat("no CUDA device: ", why));
  JsonLine().Add("bench", "cuda_quantize").Add("gpu", devices->front().name).Print();
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(kElements);
  for (float& v : x) v = normal(rng);
  float *dx = nullptr, *dcopy = nullptr;
  CheckCuda(cudaMalloc(&dx, kElements * sizeof(float)), "cudaMalloc(x)");
  CheckCuda(cudaMalloc(&dcopy, kElements * sizeof(float)), "cudaMalloc(copy)");
  CheckCuda(cudaMemcpy(dx, x.data(), kElements * sizeof(float), cudaMemcpyHostToDevice),
            "cudaMemcpy(x)");
  const double copy_seconds = BestDeviceSeconds([&] {
    CheckCuda(cudaMemcpy(dcopy, dx, kElements * sizeof(float), cudaMemcpyDeviceToDevice),
              "cudaMemcpy(device to device)");
  });
  absl::StatusOr<cuda::QuantizeWorkspace> workspace = cuda::QuantizeWorkspace::Create();
  CheckOk(workspace.status(), "QuantizeWorkspace");
  for (int bits : {8}) Run<int8_t>(bits, x, dx, copy_seconds, *workspace);
  for (int bits : {12, 16}) Run<int16_t>(bits, x, dx, copy_seconds, *workspace);
  cudaFree(dx);
  cudaFree(dcopy);
  return 0;
}

}  // namespace
}  // namespace muppet::bench

int main() { return muppet::bench::Main(); }
