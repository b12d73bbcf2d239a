#include "worker/optim/lr_schedule.h"

#include <cmath>

#include "gtest/gtest.h"

namespace muppet {
namespace {

TEST(LrScheduleTest, Constant) {
  v1::LrSchedule spec;
  spec.mutable_constant();
  LrSchedule s(0.1, spec, 10);
  EXPECT_DOUBLE_EQ(s.At(0), 0.1);
  EXPECT_DOUBLE_EQ(s.At(9), 0.1);
}

TEST(LrScheduleTest, Step) {
  v1::LrSchedule spec;
  spec.mutable_step()->set_step_epochs(3);
  spec.mutable_step()->set_gamma(0.5);
  LrSchedule s(0.8, spec, 10);
  EXPECT_DOUBLE_EQ(s.At(2), 0.8);
  EXPECT_DOUBLE_EQ(s.At(3), 0.4);
  EXPECT_DOUBLE_EQ(s.At(7), 0.2);
}

TEST(LrScheduleTest, MultiStep) {
  v1::LrSchedule spec;
  spec.mutable_multi_step()->add_milestones(5);
  spec.mutable_multi_step()->add_milestones(8);
  spec.mutable_multi_step()->set_gamma(0.1);
  LrSchedule s(1.0, spec, 10);
  EXPECT_DOUBLE_EQ(s.At(4), 1.0);
  EXPECT_NEAR(s.At(5), 0.1, 1e-12);
  EXPECT_NEAR(s.At(9), 0.01, 1e-12);
}

TEST(LrScheduleTest, Cosine) {
  v1::LrSchedule spec;
  spec.mutable_cosine()->set_min_learning_rate(0.0);
  LrSchedule s(0.2, spec, 10);
  EXPECT_DOUBLE_EQ(s.At(0), 0.2);
  EXPECT_NEAR(s.At(5), 0.1, 1e-12);
  EXPECT_NEAR(s.At(10), 0.0, 1e-12);
}

TEST(LrScheduleTest, PrecisionAwareIsConstantUntilFp32ThenStepsToAFloor) {
  v1::LrSchedule spec;
  auto& p = *spec.mutable_precision_aware();
  p.set_step_epochs(15);
  p.set_gamma(0.1);
  p.set_floor_ratio(0.01);
  LrSchedule s(0.1, spec, 200);
  EXPECT_DOUBLE_EQ(s.At(50), 0.1);                 // Still fixed point.
  EXPECT_DOUBLE_EQ(s.At(60, 60), 0.1);             // First FP32 epoch.
  EXPECT_NEAR(s.At(75, 60), 0.01, 1e-12);          // One decay.
  EXPECT_NEAR(s.At(90, 60), 0.001, 1e-12);         // The floor, initial / 100.
  EXPECT_NEAR(s.At(150, 60), 0.001, 1e-12);        // Stays at the floor.
}

}  // namespace
}  // namespace muppet
