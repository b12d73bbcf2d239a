#include "worker/gpu/plan.h"

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "worker/models/model.h"
#include "worker/nn/containers.h"
#include "worker/nn/elementwise.h"
#include "worker/nn/pooling.h"

namespace muppet::gpu {
namespace {

std::unique_ptr<Model> Build(const std::string& name, int64_t channels, int64_t size,
                             ModelConfig::Variant variant = ModelConfig::Variant::kAuto) {
  absl::StatusOr<std::unique_ptr<Model>> model = BuildModel(
      {.name = name, .in_channels = channels, .height = size, .width = size, .variant = variant});
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

void Count(const GpuOp& op, std::map<std::string, int>& counts) {
  ++counts[GpuOpName(op.kind)];
  for (const GpuOp& c : op.children) Count(c, counts);
}

TEST(PlanGpuTest, Resnet20MapsEveryLayerWithItsShapes) {
  std::unique_ptr<Model> model = Build("resnet20", 1, 28);
  absl::StatusOr<GpuOp> plan = PlanGpu(model->network(), {8, 1, 28, 28});
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::map<std::string, int> counts;
  Count(*plan, counts);
  // The stem, 9 blocks of two, and the two projecting shortcuts.
  EXPECT_EQ(counts["conv"], 21);
  EXPECT_EQ(counts["batch_norm"], 21);
  EXPECT_EQ(counts["residual"], 9);
  EXPECT_EQ(counts["global_avg_pool"], 1);
  EXPECT_EQ(counts["linear"], 1);
  EXPECT_EQ(plan->output, (Shape{8, 10}));
  EXPECT_EQ(plan->children.front().layer, model->network().layers().front().get());
  // Each child of a chain sees its predecessor's output.
  for (size_t i = 1; i < plan->children.size(); ++i) {
    EXPECT_EQ(plan->children[i].input, plan->children[i - 1].output) << i;
  }
  const GpuOp& first_downsampling = plan->children[5];  // stage2.0, after stem conv/bn + 3.
  ASSERT_EQ(first_downsampling.kind, GpuOp::Kind::kResidual);
  ASSERT_EQ(first_downsampling.children.size(), 2u);
  EXPECT_EQ(first_downsampling.output, (Shape{8, 32, 14, 14}));
}

TEST(PlanGpuTest, ImageNetResnet18IncludesItsMaxPool) {
  std::unique_ptr<Model> model = Build("resnet18", 3, 224, ModelConfig::Variant::kImageNet);
  absl::StatusOr<GpuOp> plan = PlanGpu(model->network(), {2, 3, 224, 224});
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::map<std::string, int> counts;
  Count(*plan, counts);
  EXPECT_EQ(counts["max_pool"], 1);
  EXPECT_EQ(counts["conv"], 20);
  EXPECT_EQ(plan->output, (Shape{2, 10}));
}

TEST(PlanGpuTest, AlexnetMapsEveryLayer) {
  std::unique_ptr<Model> alexnet = Build("alexnet", 1, 28);
  absl::StatusOr<GpuOp> plan = PlanGpu(alexnet->network(), {2, 1, 28, 28});
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::map<std::string, int> counts;
  Count(*plan, counts);
  EXPECT_EQ(counts["conv"], 5);
  EXPECT_EQ(counts["relu"], 5);
  EXPECT_EQ(counts["max_pool"], 3);
  EXPECT_EQ(counts["linear"], 1);
}

TEST(PlanGpuTest, LayersWithoutAGpuCounterpartAreNamed) {
  Sequential dropout;
  dropout.Add(std::make_unique<Relu>());
  dropout.Add(std::make_unique<Dropout>(0.5, 1));
  absl::StatusOr<GpuOp> plan = PlanGpu(dropout, {2, 4, 8, 8});
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(plan.status().message().find("layer 1: Dropout"), std::string::npos) << plan.status();

  std::unique_ptr<Model> googlenet = Build("googlenet", 3, 32);
  plan = PlanGpu(googlenet->network(), {2, 3, 32, 32});
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kUnimplemented) << plan.status();

  Sequential ceil;
  ceil.Add(std::make_unique<Pool2d>(Pool2d::Kind::kMax,
                                    PoolOptions{.kernel = 3, .stride = 2, .ceil_mode = true}));
  plan = PlanGpu(ceil, {1, 4, 9, 9});
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(plan.status().message().find("layer 0: pooling whose output size rounds up"),
            std::string::npos)
      << plan.status();
}

TEST(PlanGpuTest, EmptyShapesAreInvalid) {
  Sequential net;
  net.Add(std::make_unique<Relu>());
  EXPECT_EQ(PlanGpu(net, {0, 4, 9, 9}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanGpu(net, {2, 4, 9}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace muppet::gpu
