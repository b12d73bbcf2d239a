#include "worker/train/trainer.h"

#include <cmath>
#include <map>

#include "gtest/gtest.h"
#include "worker/train/gradient_window.h"
#include "worker/train/test_data.h"

namespace muppet {
namespace {

std::unique_ptr<Model> Build(const std::string& name, uint64_t seed) {
  auto model = BuildModel(
      {.name = name, .in_channels = 1, .height = 12, .width = 12, .num_classes = 4, .seed = seed});
  EXPECT_TRUE(model.ok()) << model.status();
  return *std::move(model);
}

std::vector<double> TrainLosses(const std::string& model_name, const TrainTest& data, uint64_t seed,
                                int epochs, int bits = kFp32Bits) {
  auto model = Build(model_name, seed);
  model->precision().bits = bits;
  // A forced route: auto's choices follow timings, which differ between runs.
  Trainer trainer(*model, data,
                  {.epochs = epochs,
                   .batch_size = 32,
                   .augment = true,
                   .seed = seed,
                   .fixed_point_route = FixedPointRoute::kInteger});
  std::vector<double> losses;
  for (int e = 0; e < epochs; ++e) {
    absl::StatusOr<EpochResult> r = trainer.TrainEpoch(e, 0.05);
    EXPECT_TRUE(r.ok()) << r.status();
    losses.push_back(r->train_loss);
  }
  return losses;
}

TEST(TrainerTest, SameSeedGivesIdenticalLosses) {
  const TrainTest data = SmallSynthetic();
  for (const char* name : {"lenet5", "resnet20"}) {
    for (int bits : {32, 8, 12}) {
      const std::vector<double> a = TrainLosses(name, data, 5, 2, bits);
      const std::vector<double> b = TrainLosses(name, data, 5, 2, bits);
      EXPECT_EQ(a, b) << name << " " << bits;  // Bit-identical, not merely close.
      EXPECT_NE(a, TrainLosses(name, data, 6, 2, bits)) << name << " " << bits;
    }
  }
}

TEST(TrainerTest, LearnsALearnableDatasetInFp32AndFixedPoint) {
  const TrainTest data = SmallSynthetic();
  for (int bits : {32, 8, 12, 16}) {
    auto model = Build("lenet5", 1);
    model->precision().bits = bits;
    Trainer trainer(*model, data, {.epochs = 3, .batch_size = 32, .seed = 1});
    absl::StatusOr<EpochResult> first = trainer.TrainEpoch(0, 0.01), last;
    for (int e = 1; e < 3; ++e) last = trainer.TrainEpoch(e, 0.01);
    ASSERT_TRUE(first.ok() && last.ok());
    EXPECT_LT(last->train_loss, first->train_loss) << bits;
    EXPECT_EQ(last->samples, 512);
    EXPECT_EQ(last->precision_bits, bits);
    EXPECT_GT(last->images_per_second, 0);
    EXPECT_GE(last->test_accuracy, 0.95) << bits;  // Four well-separated class means.
  }
}

// Fixed point really is fixed point: the weights the layers compute with differ from FP32
// master weights, so the same run at 8 bits and in FP32 gives different losses, and at 4 bits
// codes saturate on stochastic round-ups.
TEST(TrainerTest, FixedPointChangesTheNumericsAndCountsSaturations) {
  const TrainTest data = SmallSynthetic();
  EXPECT_NE(TrainLosses("lenet5", data, 3, 1, 32), TrainLosses("lenet5", data, 3, 1, 8));
  auto model = Build("lenet5", 3);
  model->precision().bits = 4;
  Trainer trainer(*model, data, {.epochs = 1, .batch_size = 32, .seed = 3});
  absl::StatusOr<EpochResult> r = trainer.TrainEpoch(0, 0.01);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->saturations, 0);
}

TEST(TrainerTest, DivergenceInFixedPointIsAnErrorNamingTheLayer) {
  const TrainTest data = SmallSynthetic();
  auto model = Build("lenet5", 2);
  model->precision().bits = 8;
  model->parameters()[0]->value[0] = NAN;
  Trainer trainer(*model, data, {.epochs = 1, .batch_size = 32, .seed = 2});
  absl::StatusOr<EpochResult> r = trainer.TrainEpoch(0, 0.01);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(model->parameters()[0]->name.substr(0, 5)), std::string::npos)
      << r.status();
}

// A controller that records what it is told and climbs on a fixed plan.
class ScriptedController : public PrecisionController {
 public:
  explicit ScriptedController(std::map<int64_t, int> climbs) : climbs_(std::move(climbs)) {}
  bool NeedsGradients() const override { return true; }
  absl::StatusOr<scheduler::Decision> EndPolicyEpoch(const PolicyEpochReport& report) override {
    reports.push_back(report);
    scheduler::Decision d{.next_precision_bits = report.precision_bits,
                          .window_closed = report.epoch % 2 == 1};
    if (auto it = climbs_.find(report.epoch); it != climbs_.end()) {
      d.next_precision_bits = it->second;
      d.switched = true;
    }
    if (d.window_closed) d.diagnostics.diversity = 1.0 + report.epoch;
    return d;
  }
  std::vector<PolicyEpochReport> reports;

 private:
  std::map<int64_t, int> climbs_;
};

TEST(TrainerTest, PolicyEpochsOfIterationsReportGradientsAndApplyDecisions) {
  const TrainTest data = SmallSynthetic();  // 16 minibatches of 32 per epoch.
  auto model = Build("lenet5", 4);
  model->precision().bits = 8;
  ScriptedController controller({{1, 12}, {5, 32}});
  Trainer trainer(*model, data,
                  {.epochs = 2, .batch_size = 32, .seed = 4, .policy_epoch_iterations = 5},
                  &controller);
  absl::StatusOr<EpochResult> e0 = trainer.TrainEpoch(0, 0.01);
  absl::StatusOr<EpochResult> e1 = trainer.TrainEpoch(1, 0.01);
  ASSERT_TRUE(e0.ok() && e1.ok());
  // 32 iterations: policy epochs end after iterations 5, 10, ..., 30.
  ASSERT_EQ(controller.reports.size(), 6u);
  const int expected_bits[] = {8, 8, 12, 12, 12, 12};
  for (int j = 0; j < 6; ++j) {
    const PolicyEpochReport& r = controller.reports[j];
    EXPECT_EQ(r.epoch, j);
    EXPECT_EQ(r.precision_bits, expected_bits[j]);
    EXPECT_EQ(r.metrics.samples, 5 * 32);
    EXPECT_LT(r.metrics.test_accuracy, 0);  // Not evaluated mid-epoch.
    ASSERT_EQ(r.gradients.size(), model->parameters().size());
    EXPECT_EQ(r.gradients[0].name, model->parameters()[0]->name);
    EXPECT_GT(r.gradients[0].squared_norm, 0);
    // B_l restarts after each window the controller closed (odd policy epochs here).
    if (j % 2 == 0) {
      EXPECT_DOUBLE_EQ(r.gradients[0].window_sum_squared_norm, r.gradients[0].squared_norm);
    }
  }
  ASSERT_EQ(e0->switches.size(), 1u);
  EXPECT_EQ(e0->switches[0].epoch, 0);  // After iteration 10 of epoch 0.
  EXPECT_EQ(e0->switches[0].from_bits, 8);
  EXPECT_EQ(e0->switches[0].to_bits, 12);
  ASSERT_EQ(e1->switches.size(), 1u);
  EXPECT_EQ(e1->switches[0].to_bits, 32);
  EXPECT_EQ(e1->switches[0].policy_epoch, 5);
  EXPECT_EQ(model->precision().bits, 32);
  EXPECT_EQ(e1->precision_bits, 32);  // Its last two iterations ran in FP32.
  EXPECT_DOUBLE_EQ(*e1->diagnostics.diversity, 6.0);
}

TEST(TrainerTest, PolicyEpochsOfRealEpochsCarryTheEpochsMetrics) {
  const TrainTest data = SmallSynthetic();
  auto model = Build("lenet5", 4);
  model->precision().bits = 8;
  ScriptedController controller(std::map<int64_t, int>{{0, 14}});
  Trainer trainer(*model, data, {.epochs = 2, .batch_size = 32, .seed = 4}, &controller);
  absl::StatusOr<EpochResult> e0 = trainer.TrainEpoch(0, 0.01);
  ASSERT_TRUE(e0.ok());
  ASSERT_EQ(controller.reports.size(), 1u);
  EXPECT_EQ(controller.reports[0].metrics.test_accuracy, e0->test_accuracy);
  EXPECT_EQ(controller.reports[0].metrics.samples, 512);
  ASSERT_EQ(e0->switches.size(), 1u);
  EXPECT_EQ(e0->switches[0].epoch, 1);
  EXPECT_EQ(model->precision().bits, 14);
}

TEST(GradientWindowTest, SumsTheOptimisersGradientsUntilReset) {
  Parameter p("w", {3});
  GradientWindow window({&p}, 0.5);
  p.value[0] = 2, p.value[1] = -2, p.value[2] = 0;
  p.grad[0] = 1, p.grad[1] = 1, p.grad[2] = 3;  // g = grad + 0.5 * value = (2, 0, 3).
  std::vector<scheduler::TensorGradient> s = window.Add();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].name, "w");
  EXPECT_DOUBLE_EQ(s[0].squared_norm, 13);
  EXPECT_DOUBLE_EQ(s[0].window_sum_squared_norm, 13);
  p.grad[2] = -3;  // g = (2, 0, -3); B = (4, 0, 0).
  s = window.Add();
  EXPECT_DOUBLE_EQ(s[0].squared_norm, 13);
  EXPECT_DOUBLE_EQ(s[0].window_sum_squared_norm, 16);
  window.Reset();
  s = window.Add();
  EXPECT_DOUBLE_EQ(s[0].window_sum_squared_norm, 13);
}

}  // namespace
}  // namespace muppet
