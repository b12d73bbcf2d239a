#include "worker/models/model.h"

#include <cmath>
#include <set>

#include "gtest/gtest.h"
#include "worker/nn/gradient_check.h"

namespace muppet {
namespace {

using testing::RandomNormal;

struct ShapeCase {
  ModelConfig config;
  int64_t parameter_tensors;
};

class ModelShapeTest : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(ModelShapeTest, ForwardAndBackwardGiveClassLogits) {
  const ModelConfig& config = GetParam().config;
  absl::StatusOr<std::unique_ptr<Model>> model = BuildModel(config);
  ASSERT_TRUE(model.ok()) << model.status();
  const int64_t batch = 2;
  EXPECT_EQ((*model)->OutputShape(batch), (Shape{batch, config.num_classes}));
  const Tensor x = RandomNormal({batch, config.in_channels, config.height, config.width}, 1);
  const Tensor& logits = (*model)->Forward(x, Mode::kTrain);
  ASSERT_EQ(logits.shape(), (Shape{batch, config.num_classes}));
  for (float v : logits.span()) ASSERT_TRUE(std::isfinite(v));
  (*model)->Backward(RandomNormal(logits.shape(), 2));
  EXPECT_EQ(static_cast<int64_t>((*model)->parameters().size()), GetParam().parameter_tensors);
  std::set<std::string> names;
  for (const Parameter* p : (*model)->parameters()) {
    EXPECT_TRUE(names.insert(p->name).second) << "duplicate " << p->name;
    for (float g : p->grad.span()) ASSERT_TRUE(std::isfinite(g)) << p->name;
  }
}

ModelConfig Config(std::string name, int64_t c, int64_t hw, int64_t classes,
                   ModelConfig::Variant variant = ModelConfig::Variant::kAuto) {
  return {.name = std::move(name), .in_channels = c, .height = hw, .width = hw,
          .num_classes = classes, .variant = variant, .seed = 3};
}

// Parameter tensors: lenet5 5 layers x (w, b); resnet20 stem 3 + 9 blocks x 6 + 2 projections
// x 3 + fc 2; alexnet 6 x 2; resnet18 3 + 8 x 6 + 3 x 3 + 2; googlenet stem 3 (small) or 9
// + 9 inceptions x 6 convs x 3 + fc 2.
INSTANTIATE_TEST_SUITE_P(
    Models, ModelShapeTest,
    ::testing::Values(ShapeCase{Config("lenet5", 1, 28, 10), 10},
                      ShapeCase{Config("lenet5", 3, 32, 10), 10},
                      ShapeCase{Config("resnet20", 1, 28, 10), 65},
                      ShapeCase{Config("resnet20", 3, 32, 100), 65},
                      ShapeCase{Config("alexnet", 1, 28, 10), 12},
                      ShapeCase{Config("alexnet", 3, 32, 10), 12},
                      ShapeCase{Config("resnet18", 3, 32, 10), 62},
                      ShapeCase{Config("resnet18", 3, 224, 1000), 62},
                      ShapeCase{Config("googlenet", 3, 32, 10), 167},
                      ShapeCase{Config("googlenet", 3, 224, 1000), 173}),
    [](const ::testing::TestParamInfo<ShapeCase>& info) {
      return info.param.config.name + "_" + std::to_string(info.param.config.in_channels) + "x" +
             std::to_string(info.param.config.height);
    });

TEST(BuildModelTest, UnknownNameIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<Model>> model = BuildModel(Config("vgg16", 3, 32, 10));
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("unknown model \"vgg16\""), std::string::npos);
}

TEST(BuildModelTest, VariantOnlyWhereItExists) {
  EXPECT_FALSE(BuildModel(Config("lenet5", 1, 28, 10, ModelConfig::Variant::kImageNet)).ok());
  absl::StatusOr<std::unique_ptr<Model>> imagenet =
      BuildModel(Config("resnet18", 3, 64, 10, ModelConfig::Variant::kImageNet));
  ASSERT_TRUE(imagenet.ok()) << imagenet.status();
  EXPECT_EQ((*imagenet)->parameters().front()->value.shape(), (Shape{64, 3, 7, 7}));
}

TEST(BuildModelTest, TooSmallInputIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<Model>> model = BuildModel(Config("lenet5", 1, 4, 10));
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("too small"), std::string::npos);
}

TEST(BuildModelTest, HeInitialisationIsSeededAndScaled) {
  auto a = BuildModel(Config("resnet20", 1, 28, 10));
  auto b = BuildModel(Config("resnet20", 1, 28, 10));
  ASSERT_TRUE(a.ok() && b.ok());
  const Tensor& wa = (*a)->parameters()[0]->value;  // stem.conv.weight: fan_in = 9.
  const Tensor& wb = (*b)->parameters()[0]->value;
  double sum_sq = 0;
  for (int64_t i = 0; i < wa.size(); ++i) {
    ASSERT_EQ(wa[i], wb[i]);
    sum_sq += static_cast<double>(wa[i]) * wa[i];
  }
  // 144 draws of N(0, 2/9): the sample variance lies well within 40% of 2/9.
  EXPECT_NEAR(sum_sq / wa.size(), 2.0 / 9, 0.4 * 2.0 / 9);
  EXPECT_EQ((*a)->parameters()[1]->value[0], 1.0f);  // stem.bn.weight.
  EXPECT_EQ((*a)->parameters()[2]->value[0], 0.0f);  // stem.bn.bias.
}

}  // namespace
}  // namespace muppet
