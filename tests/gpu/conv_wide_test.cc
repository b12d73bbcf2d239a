// The 9-16-bit convolutions on the tensor cores (kernels/cuda/tensor_core_conv.h), all three
// passes, against exact int64 sums on the host: the byte-split int16 route (13-16 bits) exact,
// every output the exact sum rounded once and scaled; the FP16 route (9-12 bits, FP32
// accumulation) within FP32's accumulation bound for an output of n products, taken at one ulp
// per addition (tensor cores may truncate rather than round): n x 2^-23 x the sum of |products|.
// Skips, saying why, without CUDA or a GPU.
#include <cmath>
#include <random>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/common/conv_geometry.h"
#include "kernels/cuda/conv_terms.h"

#if MUPPET_WITH_CUDA
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/tensor_core_conv.h"
#endif

namespace muppet {
namespace {

using kernels::ConvGeometry;

#if MUPPET_WITH_CUDA

// One output of a pass on the host: its exact sum, the sum of its products' magnitudes and their
// count.
struct Exact {
  int64_t sum = 0;
  double magnitude = 0;
  int64_t terms = 0;
  void Add(int64_t product) {
    sum += product;
    magnitude += std::abs(static_cast<double>(product));
    ++terms;
  }
};

struct Passes {
  std::vector<Exact> y, dx, dw;
};

// The three passes by their definitions.
Passes ExactPasses(const ConvGeometry& g, const std::vector<int16_t>& x,
                   const std::vector<int16_t>& w, const std::vector<int16_t>& dy) {
  Passes p{std::vector<Exact>(dy.size()), std::vector<Exact>(x.size()),
           std::vector<Exact>(w.size())};
  cuda::ForEachConvTerm(g, [&](int64_t yi, int64_t xi, int64_t wi) {
    p.y[yi].Add(int64_t{x[xi]} * w[wi]);
    p.dx[xi].Add(int64_t{dy[yi]} * w[wi]);
    p.dw[wi].Add(int64_t{dy[yi]} * x[xi]);
  });
  return p;
}

std::vector<int16_t> RandomCodes(int64_t n, int bits, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
  std::vector<int16_t> v(n);
  for (int16_t& c : v) c = static_cast<int16_t>(code(rng));
  return v;
}

constexpr float kScale = 1.0f / 1024;

// Every output against its exact sum: equal to it rounded once, or (FP16 route) within the bound.
void ExpectNear(const std::vector<float>& got, const std::vector<Exact>& exact, bool exactly,
                const char* pass) {
  ASSERT_EQ(got.size(), exact.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const float rounded = static_cast<float>(exact[i].sum) * kScale;
    if (exactly) {
      ASSERT_EQ(got[i], rounded) << pass << "[" << i << "]";
    } else {
      const double bound = (exact[i].terms + 1) * std::ldexp(exact[i].magnitude, -23) * kScale;
      ASSERT_LE(std::abs(got[i] - static_cast<double>(exact[i].sum) * kScale), bound)
          << pass << "[" << i << "]";
    }
  }
}

template <typename T>
std::vector<T> Host(const cuda::DeviceBuffer<T>& buffer) {
  absl::StatusOr<std::vector<T>> host = buffer.ToHost();
  EXPECT_TRUE(host.ok()) << host.status();
  return host.ok() ? *std::move(host) : std::vector<T>();
}

// The three passes of `conv` on codes of `bits` bits (Code: int16_t, or __half for <= 12 bits).
template <typename Code>
void ExpectPasses(cuda::TensorCoreConv<Code>& conv, const ConvGeometry& g, int bits) {
  std::mt19937 rng(bits);
  const std::vector<int16_t> x = RandomCodes(g.n * g.h * g.w * g.c, bits, rng);
  const std::vector<int16_t> w = RandomCodes(g.o * g.kernel * g.kernel * g.c, bits, rng);
  const std::vector<int16_t> dy = RandomCodes(g.n * g.out_h() * g.out_w() * g.o, bits, rng);
  const Passes exact = ExactPasses(g, x, w, dy);
  const auto on_device = [](const std::vector<int16_t>& codes) {
    std::vector<Code> v(codes.size());
    for (size_t i = 0; i < codes.size(); ++i) {
      if constexpr (std::is_same_v<Code, __half>) {
        v[i] = __float2half(static_cast<float>(codes[i]));  // Exact: at most 12 bits.
      } else {
        v[i] = codes[i];
      }
    }
    absl::StatusOr<cuda::DeviceBuffer<Code>> buffer = cuda::DeviceBuffer<Code>::CopyOf(v);
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    return *std::move(buffer);
  };
  cuda::DeviceBuffer<Code> d_x = on_device(x), d_w = on_device(w), d_dy = on_device(dy);
  auto d_y = cuda::DeviceBuffer<float>::Allocate(static_cast<int64_t>(dy.size()));
  auto d_dx = cuda::DeviceBuffer<float>::Allocate(static_cast<int64_t>(x.size()));
  auto d_dw = cuda::DeviceBuffer<float>::Allocate(static_cast<int64_t>(w.size()));
  ASSERT_TRUE(d_y.ok() && d_dx.ok() && d_dw.ok());
  ASSERT_TRUE(conv.Forward(g, d_x.data(), d_w.data(), kScale, nullptr, d_y->data(), nullptr).ok());
  ASSERT_TRUE(
      conv.BackwardData(g, d_dy.data(), d_w.data(), kScale, nullptr, d_dx->data(), nullptr).ok());
  ASSERT_TRUE(
      conv.BackwardWeights(g, d_dy.data(), d_x.data(), kScale, 1.0f, d_dw->data(), nullptr, nullptr)
          .ok());
  const bool exactly = !std::is_same_v<Code, __half>;
  ExpectNear(Host(*d_y), exact.y, exactly, "y");
  ExpectNear(Host(*d_dx), exact.dx, exactly, "dx");
  ExpectNear(Host(*d_dw), exact.dw, exactly, "dw");
}

const ConvGeometry kShapes[] = {
    {.n = 4, .h = 14, .w = 14, .c = 1, .o = 16, .kernel = 3, .stride = 1, .padding = 1},
    {.n = 4, .h = 14, .w = 14, .c = 16, .o = 32, .kernel = 3, .stride = 2, .padding = 1},
    {.n = 4, .h = 7, .w = 7, .c = 64, .o = 64, .kernel = 3, .stride = 1, .padding = 1},
    {.n = 3, .h = 5, .w = 6, .c = 3, .o = 5, .kernel = 1, .stride = 2, .padding = 0},
    {.n = 1, .h = 9, .w = 9, .c = 4, .o = 7, .kernel = 2, .stride = 3, .padding = 1},
};

class CudaWideConvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CountDevices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
  }
};

TEST_F(CudaWideConvTest, ByteSplitPassesAreExactAt14And16Bits) {
  absl::StatusOr<cuda::ConvS16> conv = cuda::ConvS16::Create();
  ASSERT_TRUE(conv.ok()) << conv.status();
  for (int bits : {14, 16}) {
    for (const ConvGeometry& g : kShapes) ExpectPasses(*conv, g, bits);
  }
}

TEST_F(CudaWideConvTest, Fp16PassesStayWithinFp32AccumulationAt12Bits) {
  absl::StatusOr<cuda::ConvF16> conv = cuda::ConvF16::Create();
  ASSERT_TRUE(conv.ok()) << conv.status();
  for (int bits : {9, 12}) {
    for (const ConvGeometry& g : kShapes) ExpectPasses(*conv, g, bits);
  }
}

#else

TEST(CudaWideConvTest, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (no /usr/local/cuda/bin/nvcc): the 9-16-bit convolutions "
                  "are not compiled";
}

#endif

}  // namespace
}  // namespace muppet
