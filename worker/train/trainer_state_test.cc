// A run resumed from a checkpoint continues bit-identically to the uninterrupted one.
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/train/checkpoint.h"
#include "worker/train/test_data.h"
#include "worker/train/trainer.h"

namespace muppet {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Model> Build(const std::string& name) {
  auto model = BuildModel(
      {.name = name, .in_channels = 1, .height = 12, .width = 12, .num_classes = 4, .seed = 3});
  EXPECT_TRUE(model.ok()) << model.status();
  (*model)->precision().bits = 8;
  return *std::move(model);
}

// Climbs by policy epoch (12 bits from the third, FP32 from the sixth), closing a window every
// third, and records the gradient statistics it was sent.
class ScriptedLadder : public PrecisionController {
 public:
  bool NeedsGradients() const override { return true; }
  absl::StatusOr<scheduler::Decision> EndPolicyEpoch(const PolicyEpochReport& report) override {
    for (const scheduler::TensorGradient& g : report.gradients) {
      seen.push_back({report.epoch, g.squared_norm, g.window_sum_squared_norm});
    }
    const int64_t next = report.epoch + 1;
    return scheduler::Decision{.next_precision_bits = next >= 6   ? kFp32Bits
                                                      : next >= 3 ? 12
                                                                  : 8,
                               .switched = next == 3 || next == 6,
                               .window_closed = report.epoch % 3 == 2};
  }
  std::vector<std::tuple<int64_t, double, double>> seen;
};

// 16 iterations an epoch and policy epochs of 6: they span epochs, so a checkpoint falls inside
// one.
TrainerOptions Options(FixedPointRoute route) {
  return {.epochs = 4,
          .batch_size = 32,
          .augment = true,
          .seed = 3,
          .fixed_point_route = route,
          .policy_epoch_iterations = 6};
}

void ExpectSameWeights(const Model& a, const Model& b) {
  for (size_t k = 0; k < a.parameters().size(); ++k) {
    const Tensor& x = a.parameters()[k]->value;
    const Tensor& y = b.parameters()[k]->value;
    ASSERT_EQ(x.size(), y.size());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0)
        << a.parameters()[k]->name;
  }
}

TEST(TrainerStateTest, AResumedRunContinuesBitIdentically) {
  const TrainTest data = SmallSynthetic();
  const std::string path = absl::StrCat(::testing::TempDir(), "/resume.muppet");
  for (const char* name : {"lenet5", "resnet20"}) {
    // Uninterrupted: four epochs.
    auto whole = Build(name);
    ScriptedLadder whole_policy;
    Trainer whole_trainer(*whole, data, Options(FixedPointRoute::kInteger), &whole_policy);
    std::vector<EpochResult> expected;
    for (int e = 0; e < 4; ++e) {
      absl::StatusOr<EpochResult> r = whole_trainer.TrainEpoch(e, 0.05);
      ASSERT_TRUE(r.ok()) << r.status();
      expected.push_back(*r);
    }
    // Two epochs, a checkpoint on disk, then a new process's model, trainer and policy.
    TrainingCheckpoint saved;
    {
      auto first = Build(name);
      ScriptedLadder policy;
      Trainer trainer(*first, data, Options(FixedPointRoute::kInteger), &policy);
      for (int e = 0; e < 2; ++e) ASSERT_TRUE(trainer.TrainEpoch(e, 0.05).ok());
      trainer.SaveState(saved);
      ASSERT_TRUE(WriteTrainingCheckpoint(path, saved).ok());
    }
    absl::StatusOr<TrainingCheckpoint> read = ReadTrainingCheckpoint(path);
    ASSERT_TRUE(read.ok()) << read.status();
    auto resumed = Build(name);
    ScriptedLadder policy;
    Trainer trainer(*resumed, data, Options(FixedPointRoute::kInteger), &policy);
    ASSERT_TRUE(trainer.RestoreState(*read).ok());
    EXPECT_EQ(resumed->precision().bits, 12) << name;  // Restored mid-ladder.
    for (int e = 2; e < 4; ++e) {
      absl::StatusOr<EpochResult> r = trainer.TrainEpoch(e, 0.05);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->train_loss, expected[e].train_loss) << name << " epoch " << e;
      EXPECT_EQ(r->test_accuracy, expected[e].test_accuracy) << name << " epoch " << e;
      EXPECT_EQ(r->precision_bits, expected[e].precision_bits) << name << " epoch " << e;
      EXPECT_EQ(r->saturations, expected[e].saturations) << name << " epoch " << e;
    }
    ExpectSameWeights(*whole, *resumed);
    // The policy saw the same statistics after the resume, window sums included.
    const auto& all = whole_policy.seen;
    const std::vector<std::tuple<int64_t, double, double>> tail(
        all.end() - static_cast<std::ptrdiff_t>(policy.seen.size()), all.end());
    EXPECT_EQ(policy.seen, tail) << name;
    EXPECT_EQ(resumed->precision().bits, kFp32Bits);
  }
}

TEST(TrainerStateTest, RouteChoicesAreRestoredNotTimedAgain) {
  const TrainTest data = SmallSynthetic();
  auto first = Build("lenet5");
  Trainer trainer(*first, data, Options(FixedPointRoute::kAuto));
  ASSERT_TRUE(trainer.TrainEpoch(0, 0.05).ok());
  TrainingCheckpoint saved;
  trainer.SaveState(saved);
  ASSERT_GT(saved.state.route_choices_size(), 0);

  auto resumed = Build("lenet5");
  Trainer again(*resumed, data, Options(FixedPointRoute::kAuto));
  ASSERT_TRUE(again.RestoreState(saved).ok());
  ASSERT_TRUE(again.TrainEpoch(1, 0.05).ok());
  // The same shapes at the same width: every pass took its saved route, and none was timed.
  const std::vector<RouteChoice>& log = resumed->precision().route_choices;
  ASSERT_EQ(log.size(), static_cast<size_t>(saved.state.route_choices_size()));
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(static_cast<uint32_t>(log[i].route), saved.state.route_choices(i).route());
  }
}

TEST(TrainerStateTest, ACheckpointOfAnotherModelIsRefusedNamingTheDifference) {
  const TrainTest data = SmallSynthetic();
  auto lenet = Build("lenet5");
  Trainer trainer(*lenet, data, Options(FixedPointRoute::kInteger));
  TrainingCheckpoint saved;
  trainer.SaveState(saved);

  auto resnet = Build("resnet20");
  Trainer other(*resnet, data, Options(FixedPointRoute::kInteger));
  const absl::Status wrong_model = other.RestoreState(saved);
  EXPECT_EQ(wrong_model.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong_model.message()),
              HasSubstr("section \"run\": the checkpoint is of model lenet5"));

  TrainingCheckpoint reshaped = saved;
  reshaped.state.mutable_parameters(1)->set_shape(0, 7);
  auto again = Build("lenet5");
  Trainer same(*again, data, Options(FixedPointRoute::kInteger));
  EXPECT_THAT(std::string(same.RestoreState(reshaped).message()),
              HasSubstr("section \"run\": parameter 1 is"));
}

}  // namespace
}  // namespace muppet
