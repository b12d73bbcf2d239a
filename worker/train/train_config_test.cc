#include "worker/train/train_config.h"

#include "gtest/gtest.h"

namespace muppet {
namespace {

TEST(SpecFromFlagsTest, DefaultsGiveAValidFp32Spec) {
  absl::StatusOr<v1::JobSpec> spec = SpecFromFlags({.model = "resnet20"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model().name(), "resnet20");
  EXPECT_EQ(spec->dataset().data_dir(), "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(spec->batch_size(), 128u);
  EXPECT_EQ(spec->precision().kind(), v1::PrecisionPolicySpec::KIND_FP32);
  EXPECT_TRUE(spec->lr_schedule().has_constant());
}

TEST(SpecFromFlagsTest, ErrorsNameTheFlag) {
  absl::StatusOr<v1::JobSpec> spec = SpecFromFlags({.model = "lenet5", .batch_size = 0});
  EXPECT_EQ(spec.status().message(), "--batch-size: must be in [1, 65536], got 0");
  spec = SpecFromFlags({.model = "lenet5", .epochs = -3});
  EXPECT_EQ(spec.status().message(), "--epochs: must be in [1, 10000], got 4294967295");
  spec = SpecFromFlags({.model = "lenet5", .momentum = 1.5});
  EXPECT_EQ(spec.status().message(), "--momentum: must be finite and in [0, 1), got 1.5");
}

TEST(SpecFromFlagsTest, SyntheticShape) {
  absl::StatusOr<v1::JobSpec> spec =
      SpecFromFlags({.model = "resnet20", .dataset = "synthetic", .synthetic = "3x32x32,10,512,128"});
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
  spec = SpecFromFlags({.model = "resnet20", .dataset = "synthetic", .synthetic = "0x32x32,10,1,1"});
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
