#include "scheduler/precision_policy.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/spec_validation.h"

namespace muppet::scheduler {
namespace {

using ::testing::HasSubstr;
using v1::PrecisionPolicySpec;

PrecisionPolicySpec Muppet(std::vector<uint32_t> ladder, uint32_t r, uint32_t y, double alpha,
                           double beta, double lambda = 0.1) {
  PrecisionPolicySpec spec;
  spec.set_kind(PrecisionPolicySpec::KIND_MUPPET);
  for (uint32_t bits : ladder) spec.add_ladder(bits);
  spec.set_resolution_epochs(r);
  spec.set_patience(y);
  spec.set_alpha(alpha);
  spec.set_beta(beta);
  spec.set_lambda(lambda);
  ApplyPrecisionDefaults(spec);
  return spec;
}

std::unique_ptr<PrecisionPolicy> Make(const PrecisionPolicySpec& spec) {
  absl::StatusOr<std::unique_ptr<PrecisionPolicy>> policy = MakePolicy(spec);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return std::move(*policy);
}

// One tensor with ||B||^2 = 1: with r = 1, ds(j) is exactly `diversity`.
PolicyEpoch WithDiversity(int64_t j, double diversity) {
  return {.epoch = j,
          .gradients = {{.name = "w", .squared_norm = diversity, .window_sum_squared_norm = 1.0}}};
}

TEST(SwitchThresholdTest, MatchesTheReferenceFormula) {
  const PrecisionPolicySpec spec = Muppet({8, 12, 14, 16}, 3, 2, 1.0, 1.5, 0.1);
  // 1 + 1.5 e^(-0.1 j), computed by hand.
  EXPECT_DOUBLE_EQ(SwitchThreshold(spec, 0), 2.5);
  EXPECT_DOUBLE_EQ(SwitchThreshold(spec, 2), 1 + 1.5 * 0.8187307530779818);
  EXPECT_DOUBLE_EQ(SwitchThreshold(spec, 20), 1 + 1.5 * 0.1353352832366127);
  EXPECT_DOUBLE_EQ(SwitchThreshold(spec, 50), 1 + 1.5 * 0.006737946999085467);
  EXPECT_NEAR(SwitchThreshold(spec, 2), 2.23, 0.005);
  EXPECT_NEAR(SwitchThreshold(spec, 20), 1.20, 0.005);
}

TEST(MuppetPolicyTest, AccumulatesOverAWindowOfREpochsAndResets) {
  auto policy = Make(Muppet({8, 12, 14, 16}, 3, 2, 1.0, 1.5));
  EXPECT_EQ(policy->precision_bits(), 8);
  EXPECT_TRUE(policy->NeedsGradients());
  // Window 0..2: A_w = 1 + 2 + 3 = 6, ||B_w||^2 = 4; A_b = 0.5 + 0.5 + 1 = 2, ||B_b||^2 = 1.
  const double w[] = {1, 2, 3}, b[] = {0.5, 0.5, 1};
  for (int j = 0; j < 3; ++j) {
    absl::StatusOr<Decision> d = policy->Observe(
        {.epoch = j,
         .gradients = {{"w", w[j], j == 2 ? 4.0 : 9.0}, {"b", b[j], j == 2 ? 1.0 : 9.0}}});
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->next_precision_bits, 8);
    EXPECT_FALSE(d->switched);
    EXPECT_EQ(d->window_closed, j == 2);
    if (j < 2) {
      EXPECT_FALSE(d->diagnostics.diversity.has_value());
      EXPECT_FALSE(d->diagnostics.threshold.has_value());
      continue;
    }
    EXPECT_DOUBLE_EQ(*d->diagnostics.diversity, (6.0 / 4 + 2.0 / 1) / 2);  // 1.75
    EXPECT_DOUBLE_EQ(*d->diagnostics.ratio, 1.0);
    EXPECT_DOUBLE_EQ(*d->diagnostics.threshold, SwitchThreshold(Muppet({8}, 3, 2, 1, 1.5), 2));
    EXPECT_EQ(*d->diagnostics.violations, 0);
  }
  // Window 3..5 starts from A = 0: A_w = 6, ||B_w||^2 = 6; A_b = 3, ||B_b||^2 = 3; ds = 1.
  for (int j = 3; j < 6; ++j) {
    absl::StatusOr<Decision> d =
        policy->Observe({.epoch = j, .gradients = {{"w", 2, 6}, {"b", 1, 3}}});
    ASSERT_TRUE(d.ok());
    if (j < 5) continue;
    EXPECT_DOUBLE_EQ(*d->diagnostics.diversity, 1.0);
    EXPECT_DOUBLE_EQ(*d->diagnostics.ratio, 1.75);
    // p = 1.75 < T(5) = 1 + 1.5 e^-0.5 = 1.9098: no violation.
    EXPECT_EQ(*d->diagnostics.violations, 0);
    EXPECT_EQ(d->next_precision_bits, 8);
  }
}

TEST(MuppetPolicyTest, CountsViolationsSinceTheLastSwitchAndResetsDsMaxOnClimbing) {
  // r = 1 and T = 1.2 throughout (beta = 0), patience 2.
  auto policy = Make(Muppet({8, 12, 14, 16}, 1, 2, 1.2, 0.0));
  struct Step {
    double diversity;
    double ratio;
    int violations;
    int next_bits;
  };
  const Step steps[] = {
      {1.0, 1.0, 0, 8},        // First window: the maximum.
      {2.0, 1.0, 0, 8},        // New maximum.
      {1.5, 2.0 / 1.5, 1, 8},  // p = 1.33 > 1.2: violation.
      {1.9, 2.0 / 1.9, 1, 8},  // p = 1.05: none, and the count is kept (not consecutive).
      {1.0, 2.0, 2, 12},       // p = 2: second violation since the switch: climb.
      {0.5, 1.0, 0, 12},       // ds_max was reset: 0.5 is the new maximum, not p = 4.
      {0.3, 0.5 / 0.3, 1, 12}, {0.2, 2.5, 2, 14},
  };
  for (int j = 0; j < 8; ++j) {
    SCOPED_TRACE(j);
    absl::StatusOr<Decision> d = policy->Observe(WithDiversity(j, steps[j].diversity));
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(d->window_closed);
    EXPECT_DOUBLE_EQ(*d->diagnostics.diversity, steps[j].diversity);
    EXPECT_DOUBLE_EQ(*d->diagnostics.ratio, steps[j].ratio);
    EXPECT_DOUBLE_EQ(*d->diagnostics.threshold, 1.2);
    EXPECT_EQ(*d->diagnostics.violations, steps[j].violations);
    EXPECT_EQ(d->next_precision_bits, steps[j].next_bits);
    EXPECT_EQ(d->switched, j == 4 || j == 7);
    EXPECT_EQ(policy->precision_bits(), steps[j].next_bits);
  }
}

TEST(MuppetPolicyTest, FP32EndsTheLadderAndStays) {
  auto policy = Make(Muppet({8}, 1, 1, 1.2, 0.0));
  ASSERT_TRUE(policy->Observe(WithDiversity(0, 1.0)).ok());
  absl::StatusOr<Decision> d = policy->Observe(WithDiversity(1, 0.5));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->switched);
  EXPECT_EQ(d->next_precision_bits, 32);
  EXPECT_FALSE(policy->NeedsGradients());
  for (int j = 2; j < 6; ++j) {
    d = policy->Observe({.epoch = j});  // No statistics needed in FP32.
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->next_precision_bits, 32);
    EXPECT_FALSE(d->switched);
    EXPECT_FALSE(d->window_closed);
    EXPECT_FALSE(d->diagnostics.diversity.has_value());
  }
}

TEST(MuppetPolicyTest, SkipsTensorsWithZeroWindowNorm) {
  auto policy = Make(Muppet({8, 12}, 1, 1, 1.0, 1.5));
  absl::StatusOr<Decision> d = policy->Observe(
      {.epoch = 0, .gradients = {{"w", 2.0, 4.0}, {"zero", 0.0, 0.0}, {"tiny", 1e300, 1e-300}}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->diagnostics.skipped_tensors, 2);  // ||B||^2 = 0, and a ratio that overflows.
  EXPECT_DOUBLE_EQ(*d->diagnostics.diversity, 0.5);
  // Every tensor skipped: no diversity, no NaN, no violation, no climb.
  d = policy->Observe({.epoch = 1, .gradients = {{"w", 0, 0}, {"zero", 0, 0}, {"tiny", 0, 0}}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->diagnostics.skipped_tensors, 3);
  EXPECT_FALSE(d->diagnostics.diversity.has_value());
  EXPECT_FALSE(d->diagnostics.ratio.has_value());
  EXPECT_TRUE(d->diagnostics.threshold.has_value());
  EXPECT_EQ(d->next_precision_bits, 8);
}

TEST(MuppetPolicyTest, RejectsBadStatisticsAndKeepsItsState) {
  auto policy = Make(Muppet({8, 12}, 2, 2, 1.0, 1.5));
  EXPECT_THAT(policy->Observe({.epoch = 1}).status().message(),
              HasSubstr("out of order: expected 0, got 1"));
  EXPECT_THAT(policy->Observe({.epoch = 0}).status().message(),
              HasSubstr("gradient statistics are required"));
  EXPECT_THAT(policy->Observe({.epoch = 0, .gradients = {{"w", -1, 1}}}).status().message(),
              HasSubstr("tensor \"w\": squared norms must be finite and >= 0, got -1"));
  EXPECT_FALSE(policy->Observe({.epoch = 0, .gradients = {{"w", NAN, 1}}}).ok());
  ASSERT_TRUE(policy->Observe({.epoch = 0, .gradients = {{"w", 1, 1}, {"b", 1, 1}}}).ok());
  EXPECT_THAT(policy->Observe({.epoch = 1, .gradients = {{"w", 1, 1}}}).status().message(),
              HasSubstr("1 parameter tensors, but earlier epochs had 2"));
  EXPECT_THAT(
      policy->Observe({.epoch = 1, .gradients = {{"w", 1, 1}, {"c", 1, 1}}}).status().message(),
      HasSubstr("tensor 1 is \"c\", but earlier epochs had \"b\""));
  EXPECT_EQ(policy->next_epoch(), 1);
  absl::StatusOr<Decision> d =
      policy->Observe({.epoch = 1, .gradients = {{"w", 1, 4}, {"b", 3, 4}}});
  ASSERT_TRUE(d.ok());
  EXPECT_DOUBLE_EQ(*d->diagnostics.diversity, (2.0 / 4 + 4.0 / 4) / 2);
}

TEST(MuppetPolicyTest, StateRoundTripsExactly) {
  auto policy = Make(Muppet({8, 12, 14}, 3, 2, 1.0, 1.5));
  // Some diverse history: a climb, then a half-filled window.
  const auto epoch = [](int64_t j) {
    const double x = 1.0 + 0.37 * std::sin(j * 1.3);
    return PolicyEpoch{.epoch = j,
                       .gradients = {{"w", x / (j + 1), 0.1 * x}, {"b", 0.3 * x, 1.0 / (j + 2)}}};
  };
  int64_t j = 0;
  for (; j < 16; ++j) ASSERT_TRUE(policy->Observe(epoch(j)).ok());
  ASSERT_GT(policy->precision_bits(), 8);
  const std::string bytes = policy->SerializeState();
  absl::StatusOr<std::unique_ptr<PrecisionPolicy>> restored = RestorePolicy(bytes);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->SerializeState(), bytes);
  EXPECT_EQ((*restored)->precision_bits(), policy->precision_bits());
  EXPECT_EQ((*restored)->next_epoch(), 16);
  for (; j < 40; ++j) {
    absl::StatusOr<Decision> a = policy->Observe(epoch(j));
    absl::StatusOr<Decision> b = (*restored)->Observe(epoch(j));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->next_precision_bits, b->next_precision_bits);
    EXPECT_EQ(a->switched, b->switched);
    EXPECT_EQ(a->window_closed, b->window_closed);
    EXPECT_EQ(a->diagnostics.diversity, b->diagnostics.diversity);  // Bit-exact.
    EXPECT_EQ(a->diagnostics.ratio, b->diagnostics.ratio);
    EXPECT_EQ(a->diagnostics.violations, b->diagnostics.violations);
  }
  EXPECT_EQ((*restored)->SerializeState(), policy->SerializeState());
}

TEST(PolicyTest, FixedFp32AndScheduleFollowTheirSpec) {
  PrecisionPolicySpec fixed;
  fixed.set_kind(PrecisionPolicySpec::KIND_FIXED);
  fixed.set_fixed_bits(12);
  ApplyPrecisionDefaults(fixed);
  PrecisionPolicySpec fp32;
  fp32.set_kind(PrecisionPolicySpec::KIND_FP32);
  ApplyPrecisionDefaults(fp32);
  PrecisionPolicySpec schedule;
  schedule.set_kind(PrecisionPolicySpec::KIND_SCHEDULE);
  for (auto [epoch, bits] : {std::pair{0u, 8u}, {2u, 12u}, {4u, 32u}}) {
    v1::ScheduleStep* s = schedule.add_schedule();
    s->set_epoch(epoch);
    s->set_bits(bits);
  }
  ApplyPrecisionDefaults(schedule);
  const std::pair<PrecisionPolicySpec, std::vector<int>> cases[] = {
      {fixed, {12, 12, 12, 12, 12, 12}},
      {fp32, {32, 32, 32, 32, 32, 32}},
      {schedule, {8, 8, 12, 12, 32, 32}},
  };
  for (const auto& [spec, bits] : cases) {
    auto policy = Make(spec);
    EXPECT_FALSE(policy->NeedsGradients());
    EXPECT_EQ(policy->precision_bits(), bits[0]);
    for (int j = 0; j + 1 < static_cast<int>(bits.size()); ++j) {
      absl::StatusOr<Decision> d = policy->Observe({.epoch = j});
      ASSERT_TRUE(d.ok());
      EXPECT_EQ(d->next_precision_bits, bits[j + 1]);
      EXPECT_EQ(d->switched, bits[j + 1] != bits[j]);
      EXPECT_FALSE(d->window_closed);
    }
  }
}

TEST(PolicyTest, RejectsInvalidSpecsAndStates) {
  PrecisionPolicySpec spec = Muppet({8, 12}, 3, 2, 1.0, 1.5);
  spec.set_ladder(1, 4);
  EXPECT_THAT(MakePolicy(spec).status().message(),
              HasSubstr("spec.precision.ladder[1]: must be greater than the previous entry 8"));
  PrecisionPolicySpec bare;
  bare.set_kind(PrecisionPolicySpec::KIND_MUPPET);
  EXPECT_THAT(MakePolicy(bare).status().message(), HasSubstr("defaults must be applied"));
  EXPECT_THAT(RestorePolicy("not a state").status().message(), HasSubstr("policy state"));
  EXPECT_EQ(RestorePolicy("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MeasuredLadderSpecTest, KeepsTheMeasuredLevelsOrFallsBackToFp32) {
  v1::JobSpec job;
  job.mutable_precision()->set_auto_ladder(true);
  ApplyJobSpecDefaults(job);
  const v1::PrecisionPolicySpec& spec = job.precision();
  absl::StatusOr<v1::PrecisionPolicySpec> kept = MeasuredLadderSpec(spec, {8, 14});
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_FALSE(kept->auto_ladder());
  EXPECT_EQ(std::vector<uint32_t>(kept->ladder().begin(), kept->ladder().end()),
            (std::vector<uint32_t>{8, 14}));
  absl::StatusOr<std::unique_ptr<PrecisionPolicy>> policy = MakePolicy(*kept);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ((*policy)->precision_bits(), 8);

  absl::StatusOr<v1::PrecisionPolicySpec> none = MeasuredLadderSpec(spec, {});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->kind(), v1::PrecisionPolicySpec::KIND_FP32);
  policy = MakePolicy(*none);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ((*policy)->precision_bits(), kFp32Bits);

  EXPECT_EQ(MeasuredLadderSpec(spec, {12, 8}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MeasuredLadderSpec(spec, {10}).status().message(),
              ::testing::HasSubstr("10 bits is not a level"));
  v1::JobSpec fixed_ladder;
  ApplyJobSpecDefaults(fixed_ladder);
  EXPECT_THAT(MeasuredLadderSpec(fixed_ladder.precision(), {8}).status().message(),
              ::testing::HasSubstr("does not ask for the auto ladder"));
}

}  // namespace
}  // namespace muppet::scheduler
