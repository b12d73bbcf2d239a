// The trainer's side of offloaded steps (step_offload.h): driving an offload that runs the CPU
// engine on a model of its own, the trainer must train exactly as it does on its own model, the
// policy seeing the same gradients and checkpoints the same weights. (The GPU engine, the
// offload of CUDA jobs, is checked against the CPU engine in tests/gpu.)
#include <map>

#include "gtest/gtest.h"
#include "worker/train/step_offload.h"
#include "worker/train/test_data.h"
#include "worker/train/trainer.h"

namespace muppet {
namespace {

std::unique_ptr<Model> Build(uint64_t seed) {
  auto model = BuildModel({.name = "lenet5",
                           .in_channels = 1,
                           .height = 12,
                           .width = 12,
                           .num_classes = 4,
                           .seed = seed});
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

void CopyTensor(const Tensor& from, Tensor& to) {
  std::copy(from.span().begin(), from.span().end(), to.data());
}

// The CPU engine as an offload: its own model, optimiser and loss, at the precision of the
// trainer's model (read before every pass, as the GPU engine reads the CPU layers' precision).
class CpuOffload : public StepOffload {
 public:
  CpuOffload(Model& trainers, uint64_t seed, const SgdOptions& sgd)
      : trainers_(trainers), own_(Build(seed)), sgd_(own_->parameters(), sgd) {}

  absl::StatusOr<SoftmaxCrossEntropy::Result> Step(const Batch& batch) override {
    Follow();
    const SoftmaxCrossEntropy::Result r =
        loss_.Forward(own_->Forward(batch.images, Mode::kTrain), batch.labels);
    own_->Backward(loss_.Backward());
    if (!own_->precision().error.ok()) return own_->precision().error;
    ++steps;
    return r;
  }
  absl::Status Update(double lr) override {
    sgd_.Step(lr);
    return absl::OkStatus();
  }
  absl::StatusOr<SoftmaxCrossEntropy::Result> Evaluate(const Batch& batch) override {
    Follow();
    return loss_.Forward(own_->Forward(batch.images, Mode::kEval), batch.labels);
  }
  absl::Status DownloadParameters() override {
    for (size_t k = 0; k < own_->parameters().size(); ++k) {
      CopyTensor(own_->parameters()[k]->value, trainers_.parameters()[k]->value);
      CopyTensor(own_->parameters()[k]->grad, trainers_.parameters()[k]->grad);
    }
    ++gradient_downloads;
    return absl::OkStatus();
  }
  absl::Status Download(Sgd& sgd) override {
    for (size_t k = 0; k < own_->parameters().size(); ++k) {
      CopyTensor(own_->parameters()[k]->value, trainers_.parameters()[k]->value);
      CopyTensor(sgd_.momentum_buffers()[k], sgd.momentum_buffers()[k]);
    }
    for (size_t k = 0; k < own_->buffers().size(); ++k) {
      CopyTensor(*own_->buffers()[k].second, *trainers_.buffers()[k].second);
    }
    sgd.set_started(sgd_.started());
    return absl::OkStatus();
  }
  absl::Status Upload(const Sgd& sgd) override { return absl::UnimplementedError("not needed"); }

  int steps = 0;
  int gradient_downloads = 0;

 private:
  void Follow() {
    NumericPrecision& mine = own_->precision();
    const NumericPrecision& theirs = trainers_.precision();
    mine.bits = theirs.bits;
    mine.rounding = theirs.rounding;
    mine.seed = theirs.seed;
    mine.step = theirs.step;
    mine.route = theirs.route;
  }

  Model& trainers_;
  std::unique_ptr<Model> own_;
  Sgd sgd_;
  SoftmaxCrossEntropy loss_;
};

// Records the gradients' statistics it is told and climbs 8 -> 16 -> FP32.
class Climber : public PrecisionController {
 public:
  bool NeedsGradients() const override { return true; }
  absl::StatusOr<scheduler::Decision> EndPolicyEpoch(const PolicyEpochReport& report) override {
    reports.push_back(report);
    const int next = report.epoch == 1 ? 16 : report.epoch == 3 ? kFp32Bits : report.precision_bits;
    return scheduler::Decision{.next_precision_bits = next,
                               .switched = next != report.precision_bits};
  }
  std::vector<PolicyEpochReport> reports;
};

TEST(TrainerOffloadTest, OffloadedStepsTrainAsTheCpuModelDoes) {
  const TrainTest data = SmallSynthetic();
  const TrainerOptions options{.epochs = 2,
                               .batch_size = 32,
                               .seed = 3,
                               .fixed_point_route = FixedPointRoute::kInteger,
                               .policy_epoch_iterations = 6};
  auto plain = Build(7);
  plain->precision().bits = 8;
  Climber plain_policy;
  Trainer reference(*plain, data, options, &plain_policy);

  auto offloaded = Build(7);
  offloaded->precision().bits = 8;
  CpuOffload offload(*offloaded, 7, options.sgd);
  TrainerOptions with = options;
  with.offload = &offload;
  Climber offload_policy;
  Trainer trainer(*offloaded, data, with, &offload_policy);

  for (int epoch = 0; epoch < 2; ++epoch) {
    absl::StatusOr<EpochResult> want = reference.TrainEpoch(epoch, 0.05);
    absl::StatusOr<EpochResult> got = trainer.TrainEpoch(epoch, 0.05);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->train_loss, want->train_loss) << epoch;
    EXPECT_EQ(got->train_accuracy, want->train_accuracy) << epoch;
    EXPECT_EQ(got->test_accuracy, want->test_accuracy) << epoch;
    EXPECT_EQ(got->precision_bits, want->precision_bits) << epoch;
    EXPECT_EQ(got->switches.size(), want->switches.size()) << epoch;
  }
  EXPECT_EQ(offload.steps, 32);
  // The policy saw the same gradients, downloaded once per policy epoch.
  ASSERT_EQ(offload_policy.reports.size(), plain_policy.reports.size());
  EXPECT_EQ(offload.gradient_downloads, static_cast<int>(plain_policy.reports.size()));
  for (size_t j = 0; j < plain_policy.reports.size(); ++j) {
    const auto& want = plain_policy.reports[j].gradients;
    const auto& got = offload_policy.reports[j].gradients;
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(got[k].squared_norm, want[k].squared_norm) << j << " " << want[k].name;
      EXPECT_EQ(got[k].window_sum_squared_norm, want[k].window_sum_squared_norm);
    }
  }
  EXPECT_EQ(offloaded->precision().bits, kFp32Bits);

  // A checkpoint reads the offload's weights, momentum and buffers.
  ASSERT_TRUE(trainer.DownloadState().ok());
  TrainingCheckpoint got, want;
  trainer.SaveState(got);
  reference.SaveState(want);
  EXPECT_EQ(got.parameters, want.parameters);
  EXPECT_EQ(got.gradient_window, want.gradient_window);
  EXPECT_EQ(got.momentum, want.momentum);
  EXPECT_EQ(got.buffers, want.buffers);
  EXPECT_EQ(got.state.optimizer_started(), want.state.optimizer_started());
}

}  // namespace
}  // namespace muppet
