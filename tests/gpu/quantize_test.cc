// The CUDA quantiser against the CPU's, on the device: the same exponent, codes and saturations
// for random tensors of awkward sizes, every word length, both roundings; the first non-finite
// element named. Skips, saying why, without CUDA or a GPU.
#include "kernels/cpu/quantize.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

#if MUPPET_WITH_CUDA
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/quantize.h"
#endif

namespace muppet {
namespace {

#if MUPPET_WITH_CUDA

class CudaQuantizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CountDevices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    auto workspace = cuda::QuantizeWorkspace::Create();
    ASSERT_TRUE(workspace.ok()) << workspace.status();
    workspace_.emplace(*std::move(workspace));
  }

  // The device's codes, exponent and saturations for x.
  template <typename Code>
  absl::StatusOr<cuda::QuantizeResult> OnDevice(const std::vector<float>& x,
                                                const cuda::QuantizeSpec& spec,
                                                std::vector<Code>& codes) {
    absl::StatusOr<cuda::DeviceBuffer<float>> dx = cuda::DeviceBuffer<float>::CopyOf(x);
    if (!dx.ok()) return dx.status();
    absl::StatusOr<cuda::DeviceBuffer<Code>> dcodes =
        cuda::DeviceBuffer<Code>::Allocate(static_cast<int64_t>(x.size()));
    if (!dcodes.ok()) return dcodes.status();
    absl::StatusOr<cuda::QuantizeResult> r = cuda::Quantize(
        dx->data(), dx->size(), spec, dcodes->data(), *workspace_, /*stream=*/nullptr);
    absl::StatusOr<std::vector<Code>> back = dcodes->ToHost();
    if (!back.ok()) return back.status();
    codes = *std::move(back);
    return r;
  }

  template <typename Code>
  void ExpectSameAsCpu(const std::vector<float>& x, const cuda::QuantizeSpec& spec) {
    std::vector<Code> gpu;
    absl::StatusOr<cuda::QuantizeResult> r = OnDevice(x, spec, gpu);
    ASSERT_TRUE(r.ok()) << r.status();
    absl::StatusOr<kernels::Range> range = kernels::MinMax(x);
    ASSERT_TRUE(range.ok());
    const int exponent = kernels::ScaleExponent(*range, spec.word_length);
    std::vector<Code> cpu(x.size());
    const int64_t saturations = kernels::Quantize(
        x,
        {.word_length = spec.word_length,
         .exponent = exponent,
         .rounding = spec.stochastic ? kernels::Rounding::kStochastic : kernels::Rounding::kNearest,
         .seed = spec.seed,
         .stream = spec.stream},
        cpu);
    EXPECT_EQ(r->exponent, exponent);
    EXPECT_EQ(r->saturations, saturations);
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(gpu[i], cpu[i]) << "element " << i << " of " << x.size() << ", x = " << x[i] << ", "
                                << spec.word_length << " bits";
    }
  }

  std::optional<cuda::QuantizeWorkspace> workspace_;
};

std::vector<float> Random(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

TEST_F(CudaQuantizeTest, CodesExponentAndSaturationsAreTheCpus) {
  uint32_t seed = 1;
  for (size_t n : {size_t{1}, size_t{127}, size_t{128}, size_t{1000}, size_t{(1 << 20) + 37}}) {
    for (float scale : {1e-3f, 1.0f, 300.0f}) {
      const std::vector<float> x = Random(n, scale, seed++);
      for (bool stochastic : {true, false}) {
        for (int wl : {2, 4, 8}) {
          ExpectSameAsCpu<int8_t>(
              x, {.word_length = wl, .stochastic = stochastic, .seed = seed, .stream = 7});
        }
        for (int wl : {12, 14, 16}) {
          ExpectSameAsCpu<int16_t>(
              x, {.word_length = wl, .stochastic = stochastic, .seed = seed, .stream = 3});
        }
      }
    }
  }
}

// For the FP16 tensor cores: the 9-12-bit codes as FP16 values, each the CPU's code exactly.
TEST_F(CudaQuantizeTest, Fp16CodesAreTheCpusCodes) {
  const std::vector<float> x = Random(100003, 2.0f, 11);
  for (int wl : {9, 12}) {
    const cuda::QuantizeSpec spec{.word_length = wl, .seed = 3, .stream = 2};
    std::vector<__half> gpu;
    absl::StatusOr<cuda::QuantizeResult> r = OnDevice(x, spec, gpu);
    ASSERT_TRUE(r.ok()) << r.status();
    const int exponent = kernels::ScaleExponent(*kernels::MinMax(x), wl);
    std::vector<int16_t> cpu(x.size());
    kernels::Quantize(x, {.word_length = wl, .exponent = exponent, .seed = 3, .stream = 2}, cpu);
    EXPECT_EQ(r->exponent, exponent);
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(__half2float(gpu[i]), static_cast<float>(cpu[i])) << "element " << i;
    }
  }
  std::vector<__half> codes;
  EXPECT_EQ(OnDevice(x, {.word_length = 13}, codes).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CudaQuantizeTest, AllZeroAndSaturatingTensors) {
  ExpectSameAsCpu<int8_t>(std::vector<float>(4096, 0.0f), {.word_length = 8});
  // One huge element: everything else rounds to few codes, and the exponent follows it.
  std::vector<float> x = Random(5000, 1.0f, 99);
  x[4321] = 1e30f;
  ExpectSameAsCpu<int16_t>(x, {.word_length = 16, .seed = 5});
}

TEST_F(CudaQuantizeTest, TheFirstNonFiniteElementIsNamed) {
  std::vector<float> x = Random(300000, 1.0f, 3);
  x[200001] = INFINITY;
  x[123457] = NAN;
  std::vector<int8_t> codes;
  absl::StatusOr<cuda::QuantizeResult> r = OnDevice(x, {.word_length = 8}, codes);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "cannot quantise: element 123457 is nan");
}

TEST_F(CudaQuantizeTest, RefusesAWordLengthTheCodesCannotHold) {
  std::vector<int8_t> codes;
  EXPECT_EQ(OnDevice(Random(10, 1.0f, 4), {.word_length = 12}, codes).status().code(),
            absl::StatusCode::kInvalidArgument);
}

#else

TEST(CudaQuantizeTest, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (no /usr/local/cuda/bin/nvcc): the CUDA quantiser is not "
                  "compiled";
}

#endif

}  // namespace
}  // namespace muppet
