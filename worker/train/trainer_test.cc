#include "worker/train/trainer.h"

#include "gtest/gtest.h"

namespace muppet {
namespace {

TrainTest SmallSynthetic() {
  v1::SyntheticDataset s;
  s.set_channels(1);
  s.set_height(12);
  s.set_width(12);
  s.set_classes(4);
  s.set_train_size(512);
  s.set_test_size(128);
  return MakeSynthetic(s, 17);
}

std::vector<double> TrainLosses(const std::string& model_name, const TrainTest& data, uint64_t seed,
                                int epochs) {
  auto model = BuildModel({.name = model_name, .in_channels = 1, .height = 12, .width = 12,
                           .num_classes = 4, .seed = seed});
  EXPECT_TRUE(model.ok()) << model.status();
  Trainer trainer(**model, data, {.epochs = epochs, .batch_size = 32, .augment = true, .seed = seed});
  std::vector<double> losses;
  for (int e = 0; e < epochs; ++e) losses.push_back(trainer.TrainEpoch(e, 0.05).train_loss);
  return losses;
}

TEST(TrainerTest, SameSeedGivesIdenticalLosses) {
  const TrainTest data = SmallSynthetic();
  for (const char* name : {"lenet5", "resnet20"}) {
    const std::vector<double> a = TrainLosses(name, data, 5, 2);
    const std::vector<double> b = TrainLosses(name, data, 5, 2);
    EXPECT_EQ(a, b) << name;  // Bit-identical, not merely close.
    EXPECT_NE(a, TrainLosses(name, data, 6, 2)) << name;
  }
}

TEST(TrainerTest, LearnsALearnableDataset) {
  const TrainTest data = SmallSynthetic();
  auto model = BuildModel({.name = "lenet5", .in_channels = 1, .height = 12, .width = 12,
                           .num_classes = 4, .seed = 1});
  ASSERT_TRUE(model.ok());
  Trainer trainer(**model, data, {.epochs = 3, .batch_size = 32, .seed = 1});
  EpochResult first = trainer.TrainEpoch(0, 0.01), last;
  for (int e = 1; e < 3; ++e) last = trainer.TrainEpoch(e, 0.01);
  EXPECT_LT(last.train_loss, first.train_loss);
  EXPECT_EQ(last.samples, 512);
  EXPECT_GT(last.images_per_second, 0);
  EXPECT_GE(last.test_accuracy, 0.95);  // Four well-separated class means.
}

}  // namespace
}  // namespace muppet
