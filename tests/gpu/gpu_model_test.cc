// The GPU engine (worker/gpu/gpu_model.h) against the CPU engine on the same model, weights and
// batches: one SGD step of resnet20 gives the same loss and every parameter the same gradient
// (exact FP32 on both sides, sums in other orders), a few steps later evaluation agrees; at the
// fixed-point levels a small network's gradients are the CPU's, bit for bit almost everywhere,
// by either route (the same codes from the same rounding bits; only FP32 sums in other orders,
// rounded onto the grid, can land a code apart); bad input is refused before any parameter changes.
// Skips, saying why, without CUDA or a GPU.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/data/loader.h"
#include "worker/models/model.h"
#include "worker/nn/containers.h"
#include "worker/nn/conv2d.h"
#include "worker/nn/linear.h"
#include "worker/nn/loss.h"
#include "worker/nn/pooling.h"
#include "worker/nn/route.h"
#include "worker/optim/sgd.h"
#include "worker/tensor/tensor.h"

#if MUPPET_WITH_CUDA
#include "kernels/cuda/device.h"
#include "worker/gpu/gpu_model.h"
#endif

namespace muppet {
namespace {

#if MUPPET_WITH_CUDA

std::unique_ptr<Model> Resnet20() {
  absl::StatusOr<std::unique_ptr<Model>> model =
      BuildModel({.name = "resnet20", .in_channels = 1, .height = 28, .width = 28, .seed = 7});
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

Batch RandomBatch(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Batch b{.images = Tensor({n, 1, 28, 28}), .labels = std::vector<int32_t>(n), .global_size = n};
  for (float& v : b.images.span()) v = normal(rng);
  for (int32_t& l : b.labels) l = static_cast<int32_t>(rng() % 10);
  return b;
}

// One CPU training step, as the trainer takes it.
SoftmaxCrossEntropy::Result CpuStep(Model& model, Sgd& sgd, const Batch& b, double lr) {
  SoftmaxCrossEntropy loss;
  const SoftmaxCrossEntropy::Result r =
      loss.Forward(model.Forward(b.images, Mode::kTrain), b.labels);
  model.Backward(loss.Backward());
  sgd.Step(lr);
  return r;
}

// One GPU training step, as the trainer drives it.
absl::StatusOr<SoftmaxCrossEntropy::Result> GpuStep(gpu::GpuModel& gpu, Model& model,
                                                    const Batch& b, double lr) {
  ++model.precision().step;
  absl::StatusOr<SoftmaxCrossEntropy::Result> r = gpu.Step(b);
  if (!r.ok()) return r;
  if (absl::Status s = gpu.Update(lr); !s.ok()) return s;
  return r;
}

// The GPU model's state in the CPU model (and a throwaway optimiser's buffers).
void Download(gpu::GpuModel& gpu, Model& model) {
  Sgd sgd(model.parameters(), {});
  const absl::Status s = gpu.Download(sgd);
  ASSERT_TRUE(s.ok()) << s;
}

float Largest(const Tensor& t) {
  float m = 0;
  for (float v : t.span()) m = std::max(m, std::abs(v));
  return m;
}

class GpuModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CountDevices(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
  }
};

TEST_F(GpuModelTest, Resnet20StepMatchesTheCpuEngine) {
  std::unique_ptr<Model> cpu = Resnet20(), on_gpu = Resnet20();
  const SgdOptions options{.momentum = 0.9, .weight_decay = 1e-4};
  Sgd sgd(cpu->parameters(), options);
  absl::StatusOr<std::unique_ptr<gpu::GpuModel>> gpu =
      gpu::GpuModel::Create(*on_gpu, 16, cuda::FloatMath::kExact, options);
  ASSERT_TRUE(gpu.ok()) << gpu.status();

  const Batch b = RandomBatch(16, 1);
  const SoftmaxCrossEntropy::Result want = CpuStep(*cpu, sgd, b, 0.1);
  absl::StatusOr<SoftmaxCrossEntropy::Result> got = GpuStep(**gpu, *on_gpu, b, 0.1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_NEAR(got->loss, want.loss, 1e-4 * want.loss);
  EXPECT_EQ(got->correct, want.correct);

  Download(**gpu, *on_gpu);
  const std::vector<Parameter*>& a = cpu->parameters();
  const std::vector<Parameter*>& g = on_gpu->parameters();
  ASSERT_EQ(a.size(), g.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const float grad_bound = 1e-3f * Largest(a[i]->grad) + 1e-7f;
    for (int64_t j = 0; j < a[i]->grad.size(); ++j) {
      ASSERT_NEAR(g[i]->grad[j], a[i]->grad[j], grad_bound) << a[i]->name << "[" << j << "]";
      ASSERT_NEAR(g[i]->value[j], a[i]->value[j], 1e-4f * Largest(a[i]->value) + 1e-7f)
          << a[i]->name << "[" << j << "]";
    }
  }
  // BatchNorm's running statistics moved alike.
  for (size_t i = 0; i < cpu->buffers().size(); ++i) {
    const Tensor& want_buffer = *cpu->buffers()[i].second;
    const Tensor& got_buffer = *on_gpu->buffers()[i].second;
    for (int64_t j = 0; j < want_buffer.size(); ++j) {
      ASSERT_NEAR(got_buffer[j], want_buffer[j], 1e-4f * Largest(want_buffer) + 1e-7f)
          << cpu->buffers()[i].first << "[" << j << "]";
    }
  }
}

TEST_F(GpuModelTest, EvaluationAfterStepsMatchesTheCpuEngine) {
  std::unique_ptr<Model> cpu = Resnet20(), on_gpu = Resnet20();
  const SgdOptions options;
  Sgd sgd(cpu->parameters(), options);
  absl::StatusOr<std::unique_ptr<gpu::GpuModel>> gpu =
      gpu::GpuModel::Create(*on_gpu, 32, cuda::FloatMath::kExact, options);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  for (uint32_t step = 0; step < 3; ++step) {
    const Batch b = RandomBatch(32, 10 + step);
    CpuStep(*cpu, sgd, b, 0.05);
    ASSERT_TRUE(GpuStep(**gpu, *on_gpu, b, 0.05).ok());
  }
  const Batch test = RandomBatch(20, 99);  // A smaller last batch: a second set of plans.
  SoftmaxCrossEntropy loss;
  const SoftmaxCrossEntropy::Result want =
      loss.Forward(cpu->Forward(test.images, Mode::kEval), test.labels);
  ++on_gpu->precision().step;
  absl::StatusOr<SoftmaxCrossEntropy::Result> got = (*gpu)->Evaluate(test);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_NEAR(got->loss, want.loss, 2e-3 * want.loss);
}

TEST_F(GpuModelTest, TensorFloat32StepIsClose) {
  std::unique_ptr<Model> cpu = Resnet20(), on_gpu = Resnet20();
  const SgdOptions options;
  Sgd sgd(cpu->parameters(), options);
  absl::StatusOr<std::unique_ptr<gpu::GpuModel>> gpu =
      gpu::GpuModel::Create(*on_gpu, 16, cuda::FloatMath::kTf32, options);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_EQ((*gpu)->math(), cuda::FloatMath::kTf32);
  const Batch b = RandomBatch(16, 3);
  const SoftmaxCrossEntropy::Result want = CpuStep(*cpu, sgd, b, 0.1);
  absl::StatusOr<SoftmaxCrossEntropy::Result> got = GpuStep(**gpu, *on_gpu, b, 0.1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_NEAR(got->loss, want.loss, 1e-2 * want.loss);
}

// conv (with bias) -> global average pool -> linear, random weights from `seed`.
std::unique_ptr<Model> SmallNetwork(uint32_t seed) {
  auto net = std::make_unique<Sequential>();
  net->Add(std::make_unique<Conv2d>(
      "conv", Conv2dOptions{.in_channels = 1, .out_channels = 8, .kernel = 3, .padding = 1}));
  net->Add(std::make_unique<GlobalAvgPool>());
  net->Add(std::make_unique<Linear>("fc", 8, 10));
  auto model = std::make_unique<Model>("small", std::move(net), Shape{1, 28, 28});
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  for (Parameter* p : model->parameters()) {
    for (float& v : p->value.span()) v = normal(rng);
  }
  return model;
}

TEST_F(GpuModelTest, FixedPointGradientsAreTheCpuEnginesAtEveryCodeTypeAndRoute) {
  for (const auto [bits, route] : {std::pair{8, FixedPointRoute::kInteger},
                                   {12, FixedPointRoute::kInteger},
                                   {16, FixedPointRoute::kInteger},
                                   {8, FixedPointRoute::kGrid},
                                   {16, FixedPointRoute::kGrid}}) {
    std::unique_ptr<Model> cpu = SmallNetwork(1), on_gpu = SmallNetwork(1);
    for (Model* m : {cpu.get(), on_gpu.get()}) {
      m->precision().bits = bits;
      m->precision().seed = 5;
      m->precision().route = route;  // Forced: auto's choices follow timings.
    }
    const Batch b = RandomBatch(16, 2);
    ++cpu->precision().step;
    SoftmaxCrossEntropy loss;
    const double want = loss.Forward(cpu->Forward(b.images, Mode::kTrain), b.labels).loss;
    cpu->Backward(loss.Backward());
    ASSERT_TRUE(cpu->precision().error.ok()) << cpu->precision().error;

    absl::StatusOr<std::unique_ptr<gpu::GpuModel>> gpu =
        gpu::GpuModel::Create(*on_gpu, 16, cuda::FloatMath::kExact, {});
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    // Learning rate 0: the weights stay, the gradients are compared.
    absl::StatusOr<SoftmaxCrossEntropy::Result> got = GpuStep(**gpu, *on_gpu, b, 0.0);
    ASSERT_TRUE(got.ok()) << bits << " bits: " << got.status();
    EXPECT_NEAR(got->loss, want, 1e-5 * want) << bits << " bits";
    EXPECT_EQ(on_gpu->precision().step, cpu->precision().step);
    // Every pass logged its forced route, as on the CPU.
    ASSERT_FALSE(on_gpu->precision().route_choices.empty());
    for (const RouteChoice& c : on_gpu->precision().route_choices) {
      EXPECT_EQ(c.route, route) << c.layer;
      EXPECT_FALSE(c.measured) << c.layer;
    }
    Download(**gpu, *on_gpu);
    for (size_t i = 0; i < cpu->parameters().size(); ++i) {
      const Tensor& w = cpu->parameters()[i]->grad;
      const Tensor& g = on_gpu->parameters()[i]->grad;
      int64_t same = 0;
      for (int64_t j = 0; j < w.size(); ++j) {
        same += g[j] == w[j];
        ASSERT_NEAR(g[j], w[j], 1e-2f * Largest(w) + 1e-7f)
            << bits << " bits, " << cpu->parameters()[i]->name << "[" << j << "]";
      }
      EXPECT_GE(same, w.size() * 99 / 100)
          << bits << " bits, " << cpu->parameters()[i]->name << ": " << same << " of " << w.size()
          << " gradients bit-identical";
    }
  }
}

TEST_F(GpuModelTest, BadInputIsRefusedBeforeAnyParameterChanges) {
  std::unique_ptr<Model> model = Resnet20();
  const std::vector<float> before(model->parameters()[0]->value.span().begin(),
                                  model->parameters()[0]->value.span().end());
  absl::StatusOr<std::unique_ptr<gpu::GpuModel>> gpu =
      gpu::GpuModel::Create(*model, 8, cuda::FloatMath::kExact, {});
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  Batch b = RandomBatch(8, 4);
  b.labels[5] = 10;
  absl::StatusOr<SoftmaxCrossEntropy::Result> r = GpuStep(**gpu, *model, b, 0.1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("labels[5]: 10"), std::string::npos) << r.status();
  const Batch too_big = RandomBatch(9, 5);
  r = GpuStep(**gpu, *model, too_big, 0.1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  Download(**gpu, *model);
  for (size_t i = 0; i < before.size(); ++i) {
    ASSERT_EQ(model->parameters()[0]->value[i], before[i]) << i;
  }
}

TEST_F(GpuModelTest, ModelsWithoutGpuLayersAreUnimplemented) {
  absl::StatusOr<std::unique_ptr<Model>> googlenet =
      BuildModel({.name = "googlenet", .in_channels = 3, .height = 32, .width = 32});
  ASSERT_TRUE(googlenet.ok()) << googlenet.status();
  absl::StatusOr<std::unique_ptr<gpu::GpuModel>> gpu =
      gpu::GpuModel::Create(**googlenet, 4, cuda::FloatMath::kExact, {});
  EXPECT_EQ(gpu.status().code(), absl::StatusCode::kUnimplemented) << gpu.status();
}

#else

TEST(GpuModelTest, SkippedWithoutCuda) {
  GTEST_SKIP()
      << "built without CUDA (no /usr/local/cuda/bin/nvcc): the GPU engine is not compiled";
}

#endif

}  // namespace
}  // namespace muppet
