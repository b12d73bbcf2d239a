#include "client/job_file.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet::client {
namespace {

using ::testing::HasSubstr;

TEST(JobFileTest, ParsesYaml) {
  auto spec = ParseJobFile("job.yaml", R"yaml(
# A MuPPET job on Fashion-MNIST.
name: demo
model: {name: lenet5}
dataset:
  name: fashion-mnist
  train_limit: 6000
  augment: false
batch_size: 64
epochs: 5
optimizer: {learning_rate: 0.05, momentum: 0.9}
precision:
  kind: KIND_MUPPET
  ladder: [8, 12, 16]
  alpha: 1.2
labels: {team: "vision", "tier": "007"}
)yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "demo");
  EXPECT_EQ(spec->model().name(), "lenet5");
  EXPECT_EQ(spec->dataset().train_limit(), 6000u);
  EXPECT_EQ(spec->batch_size(), 64u);
  EXPECT_DOUBLE_EQ(spec->optimizer().learning_rate(), 0.05);
  EXPECT_EQ(spec->precision().kind(), v1::PrecisionPolicySpec::KIND_MUPPET);
  ASSERT_EQ(spec->precision().ladder_size(), 3);
  EXPECT_EQ(spec->precision().ladder(2), 16u);
  EXPECT_DOUBLE_EQ(spec->precision().alpha(), 1.2);
  EXPECT_EQ(spec->labels().at("tier"), "007");  // Quoted: stays a string.
}

TEST(JobFileTest, ParsesJsonWithEitherFieldSpelling) {
  auto spec = ParseJobFile(
      "job.json", R"({"model": {"name": "resnet20"}, "batchSize": 128, "epochs": 3,
                     "optimizer": {"learning_rate": 0.1}})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model().name(), "resnet20");
  EXPECT_EQ(spec->batch_size(), 128u);
}

TEST(JobFileTest, ErrorsNameTheFileAndLine) {
  EXPECT_THAT(std::string(ParseJobFile("bad.yaml", "model: {name: lenet5\nepochs: 3\n")
                              .status()
                              .message()),
              HasSubstr("bad.yaml:"));
  EXPECT_THAT(std::string(ParseJobFile("bad.yaml", "a: [1, 2\n").status().message()),
              HasSubstr("YAML syntax error"));
  EXPECT_THAT(std::string(ParseJobFile("typo.yaml", "epoch: 3\n").status().message()),
              HasSubstr("typo.yaml: not a valid JobSpec"));
  EXPECT_THAT(std::string(ParseJobFile("type.yaml", "epochs: many\n").status().message()),
              HasSubstr("type.yaml: not a valid JobSpec"));
  EXPECT_THAT(std::string(ParseJobFile("list.yaml", "- 1\n- 2\n").status().message()),
              HasSubstr("mapping of JobSpec fields"));
  EXPECT_THAT(std::string(ParseJobFile("empty.yaml", "").status().message()),
              HasSubstr("empty"));
  EXPECT_THAT(std::string(ParseJobFile("bad.json", "{\"epochs\": }").status().message()),
              HasSubstr("bad.json: not a valid JobSpec"));
  EXPECT_EQ(ReadJobFile("/nonexistent/job.yaml").status().code(), absl::StatusCode::kNotFound);
}

TEST(JobFileTest, DuplicateKeysRefusedNamingTheLine) {
  const std::string yaml =
      "model: {name: lenet5}\n"
      "epochs: 3\n"
      "dataset:\n"
      "  name: fashion-mnist\n"
      "  name: idx\n"
      "epochs: 40\n";
  EXPECT_EQ(ParseJobFile("dup.yaml", yaml).status().message(),
            "dup.yaml:5: duplicate key \"name\" (first on line 4)");
  EXPECT_EQ(ParseJobFile("dup.yaml", "epochs: 3\nbatch_size: 8\nepochs: 4\n").status().message(),
            "dup.yaml:3: duplicate key \"epochs\" (first on line 1)");
  // The same key in two mappings is no duplicate.
  EXPECT_TRUE(
      ParseJobFile("ok.yaml", "model: {name: lenet5}\ndataset: {name: fashion-mnist}\n").ok());

  EXPECT_EQ(
      ParseJobFile("dup.json", R"({"epochs": 3, "batch_size": 8, "epochs": 4})").status().message(),
      "dup.json: duplicate key \"epochs\" in the top level");
  EXPECT_EQ(ParseJobFile("dup.json", R"({"precision": {"ladder": [8, 12], "kind": 1,
                                          "kind": 2}})")
                .status()
                .message(),
            "dup.json: duplicate key \"kind\" in precision");
  EXPECT_TRUE(
      ParseJobFile("ok.json", R"({"model": {"name": "lenet5"}, "dataset": {"name": "idx"}})").ok());
}

}  // namespace
}  // namespace muppet::client
