// The GPU engine's FP32 training step (worker/gpu/gpu_model.h) in its two modes, exact FP32 and
// TF32 tensor cores (PyTorch's default for convolutions): resnet18 in the ImageNet layout on
// synthetic 224 x 224 images and resnet20 on Fashion-MNIST-sized ones, batch 256. Validation
// first: one step at batch 2 against the CPU engine's on the same weights and images (the loss
// within 1e-4, relative). Then each mode's step is timed by wall clock (a step waits for its
// loss), best of 5 after 2 untimed; one JSON line per model and mode, with the TF32/FP32 ratio.
// These are the baselines the fixed-point levels are measured against.
//   bazel run -c opt //bench:cuda_train
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/cuda_harness.h"
#include "worker/data/loader.h"
#include "worker/gpu/gpu_model.h"
#include "worker/models/model.h"
#include "worker/nn/loss.h"
#include "worker/optim/sgd.h"

namespace muppet::bench {
namespace {

struct Case {
  std::string name;
  ModelConfig config;
};

Batch RandomBatch(const ModelConfig& c, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Batch b{.images = Tensor({n, c.in_channels, c.height, c.width}),
          .labels = std::vector<int32_t>(n),
          .global_size = n};
  for (float& v : b.images.span()) v = normal(rng);
  for (int32_t& l : b.labels) l = static_cast<int32_t>(rng() % c.num_classes);
  return b;
}

std::unique_ptr<Model> Build(const ModelConfig& c) {
  return Check(BuildModel(c), absl::StrCat("BuildModel ", c.name));
}

// One step at batch 2 on the CPU and the GPU (exact FP32) from the same weights: same loss.
void Validate(const Case& c) {
  std::unique_ptr<Model> cpu = Build(c.config), on_gpu = Build(c.config);
  const Batch b = RandomBatch(c.config, 2, 1);
  SoftmaxCrossEntropy loss;
  const double want = loss.Forward(cpu->Forward(b.images, Mode::kTrain), b.labels).loss;
  auto gpu = Check(gpu::GpuModel::Create(*on_gpu, 2, cuda::FloatMath::kExact, {}), "GpuModel");
  ++on_gpu->precision().step;
  const double got = Check(gpu->Step(b), "Step").loss;
  if (!(std::abs(got - want) <= 1e-4 * std::abs(want))) {
    Fail(absl::StrCat(c.name, ": the GPU step's loss ", got, ", the CPU's ", want));
  }
}

int Main() {
  PrintGpu("cuda_train");
  const int64_t batch = 256;
  const std::vector<Case> cases = {
      {"resnet18_imagenet",
       {.name = "resnet18",
        .in_channels = 3,
        .height = 224,
        .width = 224,
        .num_classes = 1000,
        .variant = ModelConfig::Variant::kImageNet}},
      {"resnet20_fashion_mnist", {.name = "resnet20", .in_channels = 1, .height = 28, .width = 28}},
  };
  for (const Case& c : cases) Validate(c);
  for (const Case& c : cases) {
    const Batch b = RandomBatch(c.config, batch, 2);
    double seconds[2] = {};
    for (cuda::FloatMath math : {cuda::FloatMath::kExact, cuda::FloatMath::kTf32}) {
      std::unique_ptr<Model> model = Build(c.config);
      auto gpu = Check(gpu::GpuModel::Create(*model, batch, math, {}), "GpuModel");
      const double s = BestSeconds(
          [&] {
            ++model->precision().step;
            const SoftmaxCrossEntropy::Result r = Check(gpu->Step(b), "Step");
            CheckOk(gpu->Update(0.01), "Update");
            if (!std::isfinite(r.loss)) Fail(absl::StrCat(c.name, ": loss ", r.loss));
          },
          5, 2);
      seconds[math == cuda::FloatMath::kTf32] = s;
      JsonLine()
          .Add("bench", "cuda_train")
          .Add("model", c.name)
          .Add("math", cuda::FloatMathName(math))
          .Add("batch", static_cast<double>(batch))
          .Add("step_ms", s * 1e3)
          .Add("images_per_s", batch / s)
          .Add("validated", true)
          .Print();
    }
    JsonLine()
        .Add("bench", "cuda_train")
        .Add("model", c.name)
        .Add("summary", "tf32_vs_fp32")
        .Add("speed", seconds[0] / seconds[1])
        .Print();
  }
  return 0;
}

}  // namespace
}  // namespace muppet::bench

int main() { return muppet::bench::Main(); }
