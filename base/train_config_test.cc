#include "base/train_config.h"

#include "gtest/gtest.h"

namespace muppet {
namespace {

TEST(SpecFromFlagsTest, DefaultsGiveAValidMuppetSpec) {
  absl::StatusOr<v1::JobSpec> spec = SpecFromFlags({.model = "resnet20"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model().name(), "resnet20");
  EXPECT_EQ(spec->dataset().data_dir(), "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(spec->batch_size(), 128u);
  const v1::PrecisionPolicySpec& p = spec->precision();
  EXPECT_EQ(p.kind(), v1::PrecisionPolicySpec::KIND_MUPPET);
  EXPECT_EQ(std::vector<uint32_t>(p.ladder().begin(), p.ladder().end()),
            (std::vector<uint32_t>{8, 12, 14, 16}));
  EXPECT_EQ(p.resolution_epochs(), 3u);
  EXPECT_EQ(p.patience(), 2u);
  EXPECT_EQ(p.rounding(), v1::ROUNDING_STOCHASTIC);
  EXPECT_TRUE(spec->lr_schedule().has_precision_aware());
  EXPECT_EQ(spec->lr_schedule().precision_aware().step_epochs(), 15u);
}

TEST(SpecFromFlagsTest, PolicyFlags) {
  absl::StatusOr<v1::JobSpec> spec = SpecFromFlags({.model = "lenet5", .policy = "fp32"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->precision().kind(), v1::PrecisionPolicySpec::KIND_FP32);
  EXPECT_TRUE(spec->lr_schedule().has_constant());
  spec = SpecFromFlags({.model = "lenet5", .policy = "fixed:8", .rounding = "nearest"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->precision().fixed_bits(), 8u);
  EXPECT_EQ(spec->precision().rounding(), v1::ROUNDING_NEAREST);
  spec = SpecFromFlags({.model = "lenet5",
                        .lr_schedule = "precision-aware:10:0.5",
                        .ladder = "8,16",
                        .resolution = 2,
                        .patience = 1,
                        .alpha = 1.1,
                        .beta = 0.0,
                        .lambda = 0.2,
                        .policy_epoch_iterations = 50});
  ASSERT_TRUE(spec.ok()) << spec.status();
  const v1::PrecisionPolicySpec& p = spec->precision();
  EXPECT_EQ(p.ladder_size(), 2);
  EXPECT_EQ(p.resolution_epochs(), 2u);
  EXPECT_EQ(p.patience(), 1u);
  EXPECT_EQ(p.alpha(), 1.1);
  EXPECT_EQ(p.beta(), 0.0);
  EXPECT_EQ(p.lambda(), 0.2);
  EXPECT_EQ(p.policy_epoch_iterations(), 50u);
  EXPECT_EQ(spec->lr_schedule().precision_aware().step_epochs(), 10u);
  EXPECT_EQ(spec->lr_schedule().precision_aware().gamma(), 0.5);
}

TEST(SpecFromFlagsTest, PolicyErrorsNameTheFlag) {
  const auto error = [](TrainFlags flags) {
    flags.model = "lenet5";
    return std::string(SpecFromFlags(flags).status().message());
  };
  EXPECT_EQ(error({.policy = "int8"}),
            "--policy: policy \"int8\": unknown policy; expected muppet, fp32, fixed:<bits> or "
            "schedule:<epoch>:<bits>,<epoch>:<bits>,...");
  EXPECT_EQ(error({.policy = "fixed:17"}), "--policy: must be in [2, 16] or 32, got 17");
  EXPECT_EQ(error({.epochs = 10, .policy = "schedule:0:8,20:32"}),
            "--policy[1].epoch: must be below epochs = 10, got 20");
  EXPECT_EQ(error({.ladder = "8,4"}),
            "--ladder[1]: must be greater than the previous entry 8, got 4");
  EXPECT_EQ(error({.ladder = "8;12"}),
            "--ladder: expected word lengths separated by commas, e.g. 8,12,14,16, got \"8;12\"");
  EXPECT_EQ(error({.policy = "fp32", .ladder = "8"}),
            "--ladder: only allowed with kind KIND_MUPPET, got kind KIND_FP32");
  EXPECT_EQ(error({.rounding = "up"}), "--rounding: expected stochastic or nearest, got \"up\"");
  EXPECT_EQ(error({.alpha = 0.0}), "--alpha: must be finite and in (0, 100], got 0");
  EXPECT_EQ(error({.patience = -1}), "--patience: must not be negative, got -1");
}

TEST(SpecFromFlagsTest, ErrorsNameTheFlag) {
  absl::StatusOr<v1::JobSpec> spec = SpecFromFlags({.model = "lenet5", .batch_size = 0});
  EXPECT_EQ(spec.status().message(), "--batch-size: must be in [1, 65536], got 0");
  spec = SpecFromFlags({.model = "lenet5", .epochs = -3});
  EXPECT_EQ(spec.status().message(), "--epochs: must not be negative, got -3");
  spec = SpecFromFlags({.model = "lenet5", .epochs = int64_t{1} << 40});  // Past uint32.
  EXPECT_EQ(spec.status().message(), "--epochs: must be in [1, 10000], got 4294967295");
  spec = SpecFromFlags({.model = "lenet5", .workers = -2});
  EXPECT_EQ(spec.status().message(), "--workers: must not be negative, got -2");
  spec = SpecFromFlags({.model = "lenet5", .momentum = 1.5});
  EXPECT_EQ(spec.status().message(), "--momentum: must be finite and in [0, 1), got 1.5");
  spec = SpecFromFlags({.model = "lenet5", .device = "tpu"});
  EXPECT_EQ(spec.status().message(), "--device: expected cpu or cuda, got \"tpu\"");
}

TEST(SpecFromFlagsTest, DeviceSetsTheDeviceKind) {
  absl::StatusOr<v1::JobSpec> spec = SpecFromFlags({.model = "resnet20"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->resources().device_kind(), v1::DEVICE_KIND_CPU);
  spec = SpecFromFlags({.model = "resnet20", .device = "cuda"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->resources().device_kind(), v1::DEVICE_KIND_CUDA);
}

TEST(SpecFromFlagsTest, SyntheticShape) {
  absl::StatusOr<v1::JobSpec> spec = SpecFromFlags(
      {.model = "resnet20", .dataset = "synthetic", .synthetic = "3x32x32,10,512,128"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->dataset().synthetic().channels(), 3u);
  EXPECT_EQ(spec->dataset().synthetic().width(), 32u);
  EXPECT_EQ(spec->dataset().synthetic().classes(), 10u);
  EXPECT_EQ(spec->dataset().synthetic().test_size(), 128u);
  spec = SpecFromFlags({.model = "resnet20", .dataset = "synthetic"});
  EXPECT_EQ(spec.status().message(), "--synthetic: required for dataset \"synthetic\"");
  spec = SpecFromFlags({.model = "resnet20", .dataset = "synthetic", .synthetic = "3x32,10,1,1"});
  EXPECT_EQ(spec.status().message(),
            "--synthetic: expected <channels>x<height>x<width>,<classes>,<train>,<test>, got "
            "\"3x32,10,1,1\"");
  spec =
      SpecFromFlags({.model = "resnet20", .dataset = "synthetic", .synthetic = "0x32x32,10,1,1"});
  EXPECT_EQ(spec.status().message(), "--synthetic.channels: must be in [1, 64], got 0");
}

TEST(ParseLrScheduleTest, AcceptsEveryForm) {
  EXPECT_TRUE(ParseLrSchedule("constant")->has_constant());
  absl::StatusOr<v1::LrSchedule> step = ParseLrSchedule("step:15:0.1");
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->step().step_epochs(), 15u);
  EXPECT_DOUBLE_EQ(step->step().gamma(), 0.1);
  absl::StatusOr<v1::LrSchedule> multi = ParseLrSchedule("multistep:50,100:0.2");
  ASSERT_TRUE(multi.ok());
  EXPECT_EQ(multi->multi_step().milestones_size(), 2);
  EXPECT_EQ(multi->multi_step().milestones(1), 100u);
  EXPECT_DOUBLE_EQ(ParseLrSchedule("cosine:0.001")->cosine().min_learning_rate(), 0.001);
  EXPECT_DOUBLE_EQ(ParseLrSchedule("cosine")->cosine().min_learning_rate(), 0.0);
}

TEST(ParseLrScheduleTest, RejectsMalformedText) {
  for (const char* bad : {"", "step", "step:1", "step:x:0.1", "multistep:5,a:0.1", "cosine:x",
                          "constant:1", "linear"}) {
    absl::StatusOr<v1::LrSchedule> s = ParseLrSchedule(bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.status().message().find("--lr-schedule: expected"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace muppet
