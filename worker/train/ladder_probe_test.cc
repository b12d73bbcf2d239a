#include "worker/train/ladder_probe.h"

#include <algorithm>

#include "gtest/gtest.h"
#include "worker/data/dataset.h"

namespace muppet {
namespace {

TEST(LadderProbeTest, TimesEveryLevelKeepsTheFasterOnesAndLeavesTheModelAsItWas) {
  v1::SyntheticDataset s;
  s.set_channels(1);
  s.set_height(12);
  s.set_width(12);
  s.set_classes(4);
  s.set_train_size(64);
  s.set_test_size(8);
  const TrainTest data = MakeSynthetic(s, 5);
  auto model = BuildModel(
      {.name = "resnet20", .in_channels = 1, .height = 12, .width = 12, .num_classes = 4});
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<Tensor> before;
  for (Parameter* p : (*model)->parameters()) before.push_back(p->value.Clone());
  for (const auto& [name, t] : (*model)->buffers()) before.push_back(t->Clone());
  (*model)->precision().bits = 14;

  BatchLoader loader(data.train, Normalization::Of(data.train), {.batch_size = 32});
  loader.StartEpoch(0);
  absl::StatusOr<LadderProbe> probe = ProbeLadder(**model, *loader.Next(), {8, 12}, 2);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_GT(probe->fp32_step_seconds, 0);
  ASSERT_EQ(probe->levels.size(), 2u);
  std::vector<int> kept;
  double fastest_fp32 = 1e300;  // Of the FP32 steps timed alongside each level.
  for (const LevelSpeed& l : probe->levels) {
    EXPECT_GT(l.step_seconds, 0);
    const double fp32 = l.speedup_vs_fp32 * l.step_seconds;
    EXPECT_GE(fp32, probe->fp32_step_seconds * (1 - 1e-12)) << l.bits;
    fastest_fp32 = std::min(fastest_fp32, fp32);
    EXPECT_EQ(l.kept, l.speedup_vs_fp32 > 1);
    if (l.kept) kept.push_back(l.bits);
  }
  EXPECT_NEAR(fastest_fp32, probe->fp32_step_seconds, 1e-12 * fastest_fp32);
  EXPECT_EQ(probe->ladder, kept);
  EXPECT_EQ((*model)->precision().bits, 14);
  size_t i = 0;
  for (Parameter* p : (*model)->parameters()) {
    EXPECT_EQ(std::vector<float>(p->value.span().begin(), p->value.span().end()),
              std::vector<float>(before[i].span().begin(), before[i].span().end()))
        << p->name;
    ++i;
  }
  for (const auto& [name, t] : (*model)->buffers()) {
    EXPECT_EQ(std::vector<float>(t->span().begin(), t->span().end()),
              std::vector<float>(before[i].span().begin(), before[i].span().end()))
        << name;
    ++i;
  }
}

TEST(LadderProbeTest, WithNoCandidatesTimesFp32Alone) {
  v1::SyntheticDataset s;
  s.set_channels(1);
  s.set_height(28);
  s.set_width(28);
  s.set_classes(3);
  s.set_train_size(16);
  s.set_test_size(4);
  const TrainTest data = MakeSynthetic(s, 6);
  auto model =
      BuildModel({.name = "lenet5", .in_channels = 1, .height = 28, .width = 28, .num_classes = 3});
  ASSERT_TRUE(model.ok()) << model.status();
  BatchLoader loader(data.train, Normalization::Of(data.train), {.batch_size = 16});
  loader.StartEpoch(0);
  absl::StatusOr<LadderProbe> probe = ProbeLadder(**model, *loader.Next(), {}, 2);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_GT(probe->fp32_step_seconds, 0);
  EXPECT_LT(probe->fp32_step_seconds, 60);  // A measured step, not the search's start value.
  EXPECT_TRUE(probe->levels.empty());
  EXPECT_TRUE(probe->ladder.empty());
}

}  // namespace
}  // namespace muppet
