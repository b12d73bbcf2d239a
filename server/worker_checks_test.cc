#include "server/worker_checks.h"

#include <cmath>
#include <functional>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet::server {
namespace {

using ::testing::HasSubstr;

v1::RegisterWorkerRequest Declaration(int cpus, int gpus) {
  v1::RegisterWorkerRequest r;
  r.set_worker_name("node-1");
  for (int i = 0; i < cpus; ++i) {
    v1::Device& d = *r.add_devices();
    d.set_kind(v1::DEVICE_KIND_CPU);
    d.set_index(i);
  }
  for (int i = 0; i < gpus; ++i) {
    v1::Device& d = *r.add_devices();
    d.set_kind(v1::DEVICE_KIND_CUDA);
    d.set_index(i);
    d.set_name("NVIDIA H200");
  }
  r.mutable_cpu()->set_cores(64);
  r.mutable_cpu()->add_isa_features("avx2");
  r.set_version("0.6.0");
  return r;
}

TEST(CheckDeclarationTest, RealisticWorkersPass) {
  EXPECT_TRUE(CheckDeclaration(Declaration(1, 0)).ok());
  EXPECT_TRUE(CheckDeclaration(Declaration(8, 8)).ok());  // CPU 0-7 and CUDA 0-7 are distinct.
  EXPECT_TRUE(CheckDeclaration(Declaration(kMaxWorkerDevices, 0)).ok());
}

TEST(CheckDeclarationTest, TooManyOrDuplicateDevicesAndLongFieldsAreRefused) {
  const struct {
    std::function<void(v1::RegisterWorkerRequest&)> spoil;
    std::string message;
  } cases[] = {
      {[](auto& r) { r.clear_devices(); }, "devices: at least one device is required"},
      {[](auto& r) { r = Declaration(kMaxWorkerDevices - 1, 2); },
       "devices: at most 1024, got 1025"},
      {[](auto& r) { r = Declaration(200000, 0); }, "devices: at most 1024, got 200000"},
      {[](auto& r) { r.mutable_devices(1)->set_index(0); },
       "devices[1].index: DEVICE_KIND_CPU device 0 is declared twice"},
      {[](auto& r) { r.mutable_devices(0)->set_index(5000); },
       "devices[0].index: must be below 1024, got 5000"},
      {[](auto& r) { r.mutable_devices(0)->set_kind(v1::DEVICE_KIND_UNSPECIFIED); },
       "devices[0].kind: must be CPU or CUDA, got 0"},
      {[](auto& r) { r.mutable_devices(0)->set_name(std::string(129, 'x')); },
       "devices[0].name: must be at most 128 characters, got 129"},
      {[](auto& r) { r.mutable_cpu()->set_cores(1u << 20); },
       "cpu.cores: must be at most 65536, got 1048576"},
      {[](auto& r) { r.mutable_cpu()->set_model(std::string(1000, 'm')); }, "cpu.model: must be"},
      {[](auto& r) {
         for (int i = 0; i < 65; ++i) r.mutable_cpu()->add_isa_features("x");
       },
       "cpu.isa_features: at most 64, got 66"},
      {[](auto& r) { r.set_version(std::string(200, 'v')); }, "version: must be at most 128"},
  };
  for (const auto& c : cases) {
    v1::RegisterWorkerRequest r = Declaration(2, 0);
    c.spoil(r);
    const absl::Status s = CheckDeclaration(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

v1::EpochMetrics GoodMetrics() {
  v1::EpochMetrics m;
  m.set_train_loss(0.7);
  m.set_train_accuracy(0.8);
  m.set_test_accuracy(0.75);
  m.set_seconds(12.5);
  m.set_images_per_second(800);
  m.set_samples(10000);
  m.set_learning_rate(0.1);
  m.set_rank_gradient_diversity(0.5);
  m.set_allreduce_seconds(0.2);
  m.set_allreduce_exposed_seconds(0.1);
  return m;
}

TEST(CheckEpochMetricsTest, InRangeValuesAndUnsetOptionalsPass) {
  EXPECT_TRUE(CheckEpochMetrics(GoodMetrics()).ok());
  EXPECT_TRUE(CheckEpochMetrics(v1::EpochMetrics()).ok());  // Zeros, optionals unset.
  v1::EpochMetrics edges = GoodMetrics();
  edges.set_train_accuracy(1);
  edges.set_test_accuracy(0);
  edges.set_train_loss(0);
  EXPECT_TRUE(CheckEpochMetrics(edges).ok());
}

TEST(CheckEpochMetricsTest, EveryFieldOutOfRangeIsNamedWithItsValue) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const struct {
    std::function<void(v1::EpochMetrics&)> spoil;
    std::string message;
  } cases[] = {
      {[&](auto& m) { m.set_train_loss(nan); },
       "metrics.train_loss: must be finite and >= 0, got nan"},
      {[](auto& m) { m.set_train_loss(-1); },
       "metrics.train_loss: must be finite and >= 0, got -1"},
      {[](auto& m) { m.set_train_loss(INFINITY); }, "metrics.train_loss: must be finite"},
      {[](auto& m) { m.set_test_accuracy(5); }, "metrics.test_accuracy: must be in [0, 1], got 5"},
      {[](auto& m) { m.set_train_accuracy(-0.1); }, "metrics.train_accuracy: must be in [0, 1]"},
      {[](auto& m) { m.set_seconds(-3); }, "metrics.seconds: must be finite and >= 0, got -3"},
      {[&](auto& m) { m.set_images_per_second(nan); }, "metrics.images_per_second"},
      {[](auto& m) { m.set_learning_rate(-0.1); }, "metrics.learning_rate"},
      {[](auto& m) { m.set_rank_gradient_diversity(-1); }, "metrics.rank_gradient_diversity"},
      {[](auto& m) { m.set_allreduce_seconds(INFINITY); }, "metrics.allreduce_seconds"},
      {[](auto& m) { m.set_allreduce_exposed_seconds(-1); }, "metrics.allreduce_exposed_seconds"},
  };
  for (const auto& c : cases) {
    v1::EpochMetrics m = GoodMetrics();
    c.spoil(m);
    const absl::Status s = CheckEpochMetrics(m);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

v1::Job JobWithEpochs(uint32_t epochs, uint32_t reported, uint32_t policy_epoch_iterations = 0) {
  v1::Job job;
  job.set_id("job-0123456789abcdef");
  job.mutable_spec()->set_epochs(epochs);
  job.mutable_spec()->mutable_precision()->set_policy_epoch_iterations(policy_epoch_iterations);
  job.mutable_progress()->set_epochs_completed(reported);
  return job;
}

v1::JobResult GoodResult() {
  v1::JobResult r;
  r.set_test_accuracy(0.9);
  r.set_train_loss(0.3);
  r.set_wall_seconds(100);
  return r;
}

TEST(CheckSuccessTest, AFinishedJobWithValuesInRangeSucceeds) {
  EXPECT_TRUE(CheckSuccess(GoodResult(), JobWithEpochs(40, 40)).ok());
  EXPECT_TRUE(CheckSuccess(GoodResult(), JobWithEpochs(20, 7, 117)).ok());
}

TEST(CheckSuccessTest, ResultValuesOutOfRangeAreNamed) {
  v1::JobResult r = GoodResult();
  r.set_test_accuracy(5);
  EXPECT_THAT(CheckSuccess(r, JobWithEpochs(40, 40)).message(),
              HasSubstr("result.test_accuracy: must be in [0, 1], got 5"));
  r = GoodResult();
  r.set_wall_seconds(-1);
  EXPECT_THAT(CheckSuccess(r, JobWithEpochs(40, 40)).message(),
              HasSubstr("result.wall_seconds: must be finite and >= 0, got -1"));
  r = GoodResult();
  r.set_train_loss(std::nan(""));
  EXPECT_EQ(CheckSuccess(r, JobWithEpochs(40, 40)).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckSuccessTest, ASuccessBeforeTheLastEpochIsRefused) {
  const absl::Status s = CheckSuccess(GoodResult(), JobWithEpochs(40, 2));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("job job-0123456789abcdef reported 2 of its 40 epochs"));
  EXPECT_EQ(CheckSuccess(GoodResult(), JobWithEpochs(20, 0, 117)).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace muppet::server
