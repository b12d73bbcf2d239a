#include "scheduler/policy_text.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet::scheduler {
namespace {

using ::testing::HasSubstr;
using v1::PrecisionPolicySpec;

TEST(PolicyTextTest, ParsesEveryKindAndPrintsItBack) {
  for (const char* text : {"muppet", "fp32", "fixed:8", "fixed:32", "schedule:0:8,10:12,25:32"}) {
    absl::StatusOr<PrecisionPolicySpec> spec = ParsePolicyText(text);
    ASSERT_TRUE(spec.ok()) << text << ": " << spec.status();
    EXPECT_EQ(PolicyText(*spec), text);
  }
  absl::StatusOr<PrecisionPolicySpec> spec = ParsePolicyText("schedule:0:8,10:12");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind(), PrecisionPolicySpec::KIND_SCHEDULE);
  ASSERT_EQ(spec->schedule_size(), 2);
  EXPECT_EQ(spec->schedule(1).epoch(), 10u);
  EXPECT_EQ(spec->schedule(1).bits(), 12u);
  EXPECT_EQ(ParsePolicyText("fixed:14")->fixed_bits(), 14u);
}

TEST(PolicyTextTest, MalformedTextIsQuoted) {
  EXPECT_THAT(ParsePolicyText("mupet").status().message(),
              HasSubstr("policy \"mupet\": unknown policy; expected muppet, fp32"));
  EXPECT_THAT(ParsePolicyText("fixed:eight").status().message(),
              HasSubstr("policy \"fixed:eight\": <bits> is not a number"));
  EXPECT_THAT(ParsePolicyText("schedule:0:8,12").status().message(),
              HasSubstr("step \"12\" is not <epoch>:<bits>"));
  EXPECT_EQ(ParsePolicyText("").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace muppet::scheduler
