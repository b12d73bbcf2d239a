// The engine's own GPU kernels (kernels/cuda/elementwise.h) against the CPU engine's layers and
// optimiser (worker/nn, worker/optim) on the same inputs: ReLU, its gradient, the residual add
// and SGD bit for bit, special values included; softmax cross-entropy within a few ulp (the
// device's expf and log are not the CPU's). Skips, saying why, without CUDA or a GPU.
#include "worker/nn/elementwise.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "gtest/gtest.h"
#include "worker/nn/layer.h"
#include "worker/nn/loss.h"
#include "worker/optim/sgd.h"
#include "worker/tensor/tensor.h"

#if MUPPET_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/elementwise.h"
#endif

namespace muppet {
namespace {

#if MUPPET_WITH_CUDA

// Random values with the special ones among them: +-0, +-infinity, NaN, the smallest subnormal.
std::vector<float> Values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  const float special[] = {0.0f,      -0.0f,         INFINITY,
                           -INFINITY, std::nanf(""), std::numeric_limits<float>::denorm_min()};
  for (size_t i = 0; i < std::size(special); ++i) v[i * 7] = special[i];
  return v;
}

Tensor TensorOf(const std::vector<float>& v) {
  Tensor t({static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

// Bit for bit, NaNs included.
void ExpectSameBits(const std::vector<float>& got, std::span<const float> want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
        << what << "[" << i << "]: " << got[i] << " vs " << want[i];
  }
}

template <typename T>
cuda::DeviceBuffer<T> OnDevice(const std::vector<T>& v) {
  absl::StatusOr<cuda::DeviceBuffer<T>> b = cuda::DeviceBuffer<T>::CopyOf(v);
  EXPECT_TRUE(b.ok()) << b.status();
  return *std::move(b);
}

template <typename T>
std::vector<T> OnHost(const cuda::DeviceBuffer<T>& b) {
  absl::StatusOr<std::vector<T>> v = b.ToHost();
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *std::move(v) : std::vector<T>();
}

class CudaElementwiseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CountDevices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
  }
  static constexpr int64_t kN = 100003;  // Not a multiple of any block size.
};

TEST_F(CudaElementwiseTest, ReluAndItsGradientMatchTheCpuLayer) {
  const std::vector<float> x = Values(kN, 1), dy = Values(kN, 2);
  Relu relu;
  const Tensor& y = relu.Forward(TensorOf(x), Mode::kTrain);
  const Tensor& dx = relu.Backward(TensorOf(dy));
  cuda::DeviceBuffer<float> d_x = OnDevice(x), d_dy = OnDevice(dy);
  cuda::DeviceBuffer<float> d_y = OnDevice(std::vector<float>(kN));
  cuda::DeviceBuffer<float> d_dx = OnDevice(std::vector<float>(kN));
  ASSERT_TRUE(cuda::Relu(d_x.data(), kN, d_y.data(), nullptr).ok());
  ASSERT_TRUE(cuda::ReluBackward(d_dy.data(), d_y.data(), kN, d_dx.data(), nullptr).ok());
  ExpectSameBits(OnHost(d_y), y.span(), "y");
  ExpectSameBits(OnHost(d_dx), dx.span(), "dx");
}

TEST_F(CudaElementwiseTest, TheResidualAddMatchesTheCpuWithAndWithoutItsReluFloor) {
  const std::vector<float> a = Values(kN, 3), b = Values(kN, 4);
  for (float floor : {-INFINITY, 0.0f}) {
    Tensor out;
    AddInto(TensorOf(a), TensorOf(b), out, floor);
    cuda::DeviceBuffer<float> d_a = OnDevice(a), d_b = OnDevice(b);
    ASSERT_TRUE(cuda::AddInto(d_a.data(), d_b.data(), kN, floor, d_a.data(), nullptr).ok());
    ExpectSameBits(OnHost(d_a), out.span(), floor == 0.0f ? "sum with a ReLU" : "sum");
  }
}

TEST_F(CudaElementwiseTest, SgdStepsMatchTheCpuOptimiser) {
  for (bool nesterov : {false, true}) {
    Parameter p("w", {kN});
    const std::vector<float> w0 = Values(kN, 5);
    std::copy(w0.begin(), w0.end(), p.value.data());
    Sgd sgd({&p}, {.momentum = 0.9, .weight_decay = 5e-4, .nesterov = nesterov});
    cuda::DeviceBuffer<float> w = OnDevice(w0), v = OnDevice(std::vector<float>(kN));
    for (int step = 0; step < 3; ++step) {
      const std::vector<float> grad = Values(kN, 10 + step);
      std::copy(grad.begin(), grad.end(), p.grad.data());
      sgd.Step(0.05);
      cuda::DeviceBuffer<float> g = OnDevice(grad);
      ASSERT_TRUE(cuda::Sgd({.lr = 0.05f,
                             .momentum = 0.9f,
                             .weight_decay = 5e-4f,
                             .nesterov = nesterov,
                             .first = step == 0},
                            g.data(), kN, w.data(), v.data(), nullptr)
                      .ok());
      ExpectSameBits(OnHost(w), p.value.span(), nesterov ? "w (Nesterov)" : "w");
      ExpectSameBits(OnHost(v), sgd.momentum_buffers()[0].span(), "v");
    }
  }
}

TEST_F(CudaElementwiseTest, SoftmaxCrossEntropyIsWithinUlpsOfTheCpu) {
  constexpr int64_t kRows = 1000, kClasses = 10;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  Tensor logits({kRows, kClasses});
  for (int64_t i = 0; i < logits.size(); ++i) logits[i] = normal(rng);
  std::vector<int32_t> labels(kRows);
  for (int32_t& l : labels) l = static_cast<int32_t>(rng() % kClasses);
  SoftmaxCrossEntropy loss;
  const SoftmaxCrossEntropy::Result cpu = loss.Forward(logits, labels);
  const Tensor& grad = loss.Backward(4 * kRows);

  cuda::DeviceBuffer<float> z =
      OnDevice(std::vector<float>(logits.data(), logits.data() + logits.size()));
  cuda::DeviceBuffer<int32_t> l = OnDevice(labels);
  cuda::DeviceBuffer<float> p = OnDevice(std::vector<float>(logits.size()));
  cuda::DeviceBuffer<float> g = OnDevice(std::vector<float>(logits.size()));
  cuda::DeviceBuffer<double> row_loss = OnDevice(std::vector<double>(kRows));
  cuda::DeviceBuffer<int32_t> correct = OnDevice(std::vector<int32_t>(kRows));
  ASSERT_TRUE(cuda::SoftmaxCrossEntropy(z.data(), l.data(), kRows, kClasses, p.data(),
                                        row_loss.data(), correct.data(), nullptr)
                  .ok());
  ASSERT_TRUE(cuda::SoftmaxCrossEntropyBackward(p.data(), l.data(), kRows, kClasses, 4 * kRows,
                                                g.data(), nullptr)
                  .ok());
  double total = 0;
  int64_t right = 0;
  for (double v : OnHost(row_loss)) total += v;
  for (int32_t c : OnHost(correct)) right += c;
  EXPECT_NEAR(total / kRows, cpu.loss, 1e-6 * cpu.loss);
  EXPECT_EQ(right, cpu.correct);
  const std::vector<float> got = OnHost(g);
  for (int64_t i = 0; i < grad.size(); ++i) {
    ASSERT_NEAR(got[i], grad[i], 4 * std::numeric_limits<float>::epsilon() / (4 * kRows)) << i;
  }
}

TEST_F(CudaElementwiseTest, AnOutOfRangeLabelIsFlagged) {
  cuda::DeviceBuffer<float> z = OnDevice(std::vector<float>(2 * 3, 1.0f));
  cuda::DeviceBuffer<int32_t> l = OnDevice(std::vector<int32_t>{1, 3});
  cuda::DeviceBuffer<float> p = OnDevice(std::vector<float>(6));
  cuda::DeviceBuffer<double> row_loss = OnDevice(std::vector<double>(2));
  cuda::DeviceBuffer<int32_t> correct = OnDevice(std::vector<int32_t>(2));
  ASSERT_TRUE(cuda::SoftmaxCrossEntropy(z.data(), l.data(), 2, 3, p.data(), row_loss.data(),
                                        correct.data(), nullptr)
                  .ok());
  EXPECT_EQ(OnHost(correct)[1], -1);
}

#else

TEST(CudaElementwiseTest, SkippedWithoutCuda) {
  GTEST_SKIP() << "built without CUDA (no /usr/local/cuda/bin/nvcc): the kernels are not compiled";
}

#endif

}  // namespace
}  // namespace muppet
