#include "worker/train/report.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace muppet {
namespace {

TEST(ReportTest, WritesTheDocumentedShape) {
  RunReport r{.model = "lenet5",
              .dataset = "fashion-mnist",
              .policy = "fp32",
              .batch_size = 64,
              .threads = 2,
              .seed = 7};
  r.epochs.push_back({.epoch = 0,
                      .learning_rate = 0.1,
                      .train_loss = 0.5,
                      .train_accuracy = 0.8,
                      .test_accuracy = 0.85,
                      .seconds = 2.0,
                      .images_per_second = 30000,
                      .samples = 60000});
  r.final_test_accuracy = 0.85;
  r.wall_seconds = 3.5;
  const std::string path = ::testing::TempDir() + "/report.json";
  ASSERT_TRUE(WriteReport(r, path).ok());
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["model"], "lenet5");
  EXPECT_EQ(j["policy"], "fp32");
  ASSERT_EQ(j["epochs"].size(), 1u);
  EXPECT_EQ(j["epochs"][0]["precision_bits"], 32);
  EXPECT_EQ(j["epochs"][0]["train_accuracy"], 0.8);
  EXPECT_EQ(j["epochs"][0]["samples"], 60000);
  EXPECT_EQ(j["final"]["test_accuracy"], 0.85);
  EXPECT_EQ(j["final"]["wall_seconds"], 3.5);
}

TEST(ReportTest, UnwritablePathIsAnError) {
  const absl::Status s = WriteReport({}, "/nonexistent/dir/report.json");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("--report: /nonexistent/dir/report.json"), std::string::npos);
  const absl::Status checked = CheckReportPath("/nonexistent/dir/report.json");
  EXPECT_EQ(checked.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(checked.message().find("--report: /nonexistent/dir/report.json"), std::string::npos);
}

TEST(ReportTest, DeviceNodeIsNeverReplaced) {
  EXPECT_EQ(CheckReportPath("/dev/null").message(),
            "--report: /dev/null: is a device, not a regular file; it is not replaced");
  EXPECT_EQ(WriteReport({}, "/dev/null").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
}

}  // namespace
}  // namespace muppet
