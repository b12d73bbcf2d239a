// The CUDA quantiser against the device's copy bandwidth, on a 256 MiB FP32 tensor: codes are
// validated against the CPU quantiser first (every element), then the quantiser (range, exponent
// and codes: 4 bytes read twice, 1 or 2 written per element) and a device-to-device copy of the
// tensor (4 read, 4 written) are each timed with CUDA events, best of 10. One JSON line per word
// length, with the quantiser's bytes per second as a fraction of the copy's.
//   bazel run -c opt //bench:cuda_quantize
#include <cuda_runtime.h>

#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/cuda_harness.h"
#include "kernels/cpu/quantize.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/quantize.h"

namespace muppet::bench {
namespace {

constexpr int64_t kElements = int64_t{64} << 20;

template <typename Code>
void Run(int word_length, const std::vector<float>& x, const float* dx, double copy_seconds,
         cuda::QuantizeWorkspace& workspace) {
  cuda::DeviceBuffer<Code> device_codes =
      Check(cuda::DeviceBuffer<Code>::Allocate(kElements), "codes");
  Code* const dcodes = device_codes.data();
  const cuda::QuantizeSpec spec{.word_length = word_length, .seed = 42, .stream = 1};
  absl::StatusOr<cuda::QuantizeResult> r =
      cuda::Quantize(dx, kElements, spec, dcodes, workspace, nullptr);
  CheckOk(r.status(), "cuda::Quantize");
  // Validation: every code, the exponent and the saturations, against the CPU.
  const std::vector<Code> gpu = Check(device_codes.ToHost(), "codes to host");
  std::vector<Code> cpu(kElements);
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
}

int Main() {
  PrintGpu("cuda_quantize");
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(kElements);
  for (float& v : x) v = normal(rng);
  const cuda::DeviceBuffer<float> device_x = Check(cuda::DeviceBuffer<float>::CopyOf(x), "x");
  const cuda::DeviceBuffer<float> copy =
      Check(cuda::DeviceBuffer<float>::Allocate(kElements), "copy");
  const float* const dx = device_x.data();
  const double copy_seconds = BestDeviceSeconds([&] {
    CheckCuda(cudaMemcpy(copy.data(), dx, kElements * sizeof(float), cudaMemcpyDeviceToDevice),
              "cudaMemcpy(device to device)");
  });
  absl::StatusOr<cuda::QuantizeWorkspace> workspace = cuda::QuantizeWorkspace::Create();
  CheckOk(workspace.status(), "QuantizeWorkspace");
  for (int bits : {8}) Run<int8_t>(bits, x, dx, copy_seconds, *workspace);
  for (int bits : {12, 16}) Run<int16_t>(bits, x, dx, copy_seconds, *workspace);
  return 0;
}

}  // namespace
}  // namespace muppet::bench

int main() { return muppet::bench::Main(); }
