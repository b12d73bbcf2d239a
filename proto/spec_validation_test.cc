#include "proto/spec_validation.h"

#include <cmath>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet {
namespace {

using ::testing::HasSubstr;
using v1::JobSpec;
using v1::PrecisionPolicySpec;

// The smallest spec a user would submit: every other field takes its default.
JobSpec MinimalSpec() {
  JobSpec spec;
  spec.mutable_model()->set_name("lenet5");
  spec.mutable_dataset()->set_name("fashion-mnist");
  spec.set_batch_size(128);
  spec.set_epochs(10);
  spec.mutable_optimizer()->set_learning_rate(0.1);
  return spec;
}

// Asserts that `spec` violates exactly one rule, with exactly this message.
void ExpectViolation(const JobSpec& spec, const std::string& message) {
  const absl::Status status = ValidateJobSpec(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message(), message);
}

TEST(SpecDefaultsTest, MinimalSpecIsValidBeforeAndAfterDefaults) {
  JobSpec spec = MinimalSpec();
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
  ApplyJobSpecDefaults(spec);
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
}

TEST(SpecDefaultsTest, FillsDocumentedDefaults) {
  JobSpec spec = MinimalSpec();
  ApplyJobSpecDefaults(spec);
  EXPECT_DOUBLE_EQ(spec.optimizer().momentum(), 0.9);
  EXPECT_DOUBLE_EQ(spec.optimizer().weight_decay(), 1e-4);
  EXPECT_EQ(spec.dataset().data_dir(), "/usr/share/datasets/fashion-mnist");
  const PrecisionPolicySpec& p = spec.precision();
  EXPECT_EQ(p.kind(), PrecisionPolicySpec::KIND_MUPPET);
  EXPECT_THAT(p.ladder(), ::testing::ElementsAre(8, 12, 14, 16));
  EXPECT_EQ(p.resolution_epochs(), 3u);
  EXPECT_EQ(p.patience(), 2u);
  EXPECT_DOUBLE_EQ(p.alpha(), 1.0);
  EXPECT_DOUBLE_EQ(p.beta(), 1.5);
  EXPECT_DOUBLE_EQ(p.lambda(), 0.1);
  EXPECT_EQ(p.rounding(), v1::ROUNDING_STOCHASTIC);
  ASSERT_TRUE(spec.lr_schedule().has_precision_aware());
  EXPECT_EQ(spec.lr_schedule().precision_aware().step_epochs(), 15u);
  EXPECT_DOUBLE_EQ(spec.lr_schedule().precision_aware().gamma(), 0.1);
  EXPECT_DOUBLE_EQ(spec.lr_schedule().precision_aware().floor_ratio(), 0.01);
  EXPECT_EQ(spec.resources().workers(), 1u);
  EXPECT_EQ(spec.resources().devices_per_worker(), 1u);
  EXPECT_EQ(spec.resources().device_kind(), v1::DEVICE_KIND_CPU);
}

TEST(SpecDefaultsTest, IsIdempotentAndKeepsUserValues) {
  JobSpec spec = MinimalSpec();
  spec.mutable_optimizer()->set_momentum(0.0);  // Zero is a value, not "unset".
  spec.mutable_precision()->set_patience(5);
  ApplyJobSpecDefaults(spec);
  JobSpec twice = spec;
  ApplyJobSpecDefaults(twice);
  EXPECT_EQ(spec.SerializeAsString(), twice.SerializeAsString());
  EXPECT_DOUBLE_EQ(spec.optimizer().momentum(), 0.0);
  EXPECT_EQ(spec.precision().patience(), 5u);
}

TEST(SpecDefaultsTest, NonMuppetPolicyGetsConstantScheduleAndNoMuppetFields) {
  JobSpec spec = MinimalSpec();
  spec.mutable_precision()->set_kind(PrecisionPolicySpec::KIND_FP32);
  ApplyJobSpecDefaults(spec);
  EXPECT_TRUE(spec.lr_schedule().has_constant());
  EXPECT_TRUE(spec.precision().ladder().empty());
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
}

TEST(SpecValidationTest, ReportsEveryViolation) {
  JobSpec spec = MinimalSpec();
  spec.set_batch_size(0);
  spec.set_epochs(0);
  const absl::Status status = ValidateJobSpec(spec);
  EXPECT_EQ(status.message(),
            "spec.batch_size: must be in [1, 65536], got 0; "
            "spec.epochs: must be in [1, 10000], got 0");
}

TEST(SpecValidationTest, Name) {
  JobSpec spec = MinimalSpec();
  spec.set_name("my job");
  ExpectViolation(spec, "spec.name: must be at most 128 characters from [A-Za-z0-9._-], got \"my job\"");
  spec.set_name(std::string(129, 'a'));
  EXPECT_THAT(ValidateJobSpec(spec).message(), HasSubstr("spec.name: must be at most 128"));
  spec.set_name("resnet20-fmnist_v1.2");
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
}

TEST(SpecValidationTest, ModelNameRequiredAndKnown) {
  JobSpec spec = MinimalSpec();
  spec.mutable_model()->set_name("vgg16");
  ExpectViolation(spec,
                  "spec.model.name: must be one of lenet5, resnet20, alexnet, resnet18, googlenet, "
                  "got \"vgg16\"");
  spec.mutable_model()->clear_name();
  EXPECT_THAT(ValidateJobSpec(spec).message(), HasSubstr("spec.model.name: must be one of"));
}

TEST(SpecValidationTest, ModelInputChannelsRange) {
  JobSpec spec = MinimalSpec();
  spec.mutable_model()->set_input_channels(65);
  ExpectViolation(spec, "spec.model.input_channels: must be in [1, 64], got 65");
}

TEST(SpecValidationTest, ModelInputChannelsMatchDataset) {
  JobSpec spec = MinimalSpec();
  spec.mutable_model()->set_input_channels(3);
  ExpectViolation(spec,
                  "spec.model.input_channels: must be 0 or equal the dataset's channels "
                  "(1 for \"fashion-mnist\"), got 3");
  spec.mutable_model()->set_input_channels(1);
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
}

TEST(SpecValidationTest, ModelNumClasses) {
  JobSpec spec = MinimalSpec();
  spec.mutable_model()->set_num_classes(1);
  ExpectViolation(spec, "spec.model.num_classes: must be in [2, 100000], got 1");
}

TEST(SpecValidationTest, ModelNumClassesMatchDataset) {
  JobSpec spec = MinimalSpec();
  spec.mutable_model()->set_num_classes(3);
  ExpectViolation(spec,
                  "spec.model.num_classes: must be 0 or equal the dataset's classes "
                  "(10 for \"fashion-mnist\"), got 3");
  spec.mutable_model()->set_num_classes(10);
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  // Only an idx set's label file tells its classes: the worker checks them against the labels.
  spec.mutable_dataset()->set_name("idx");
  spec.mutable_dataset()->set_data_dir("/data/digits");
  spec.mutable_model()->set_num_classes(3);
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  // IDX images are grey.
  spec.mutable_model()->set_input_channels(3);
  ExpectViolation(spec,
                  "spec.model.input_channels: must be 0 or equal the dataset's channels "
                  "(1 for \"idx\"), got 3");
}

TEST(SpecValidationTest, ModelVariantOnlyForResnet18AndGooglenet) {
  JobSpec spec = MinimalSpec();
  spec.mutable_model()->set_variant(v1::ModelSpec::VARIANT_IMAGENET);
  ExpectViolation(spec,
                  "spec.model.variant: only resnet18 and googlenet have variants, got "
                  "VARIANT_IMAGENET for \"lenet5\"");
  spec.mutable_model()->set_name("resnet18");
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  spec.mutable_model()->set_variant(static_cast<v1::ModelSpec::Variant>(7));
  ExpectViolation(spec, "spec.model.variant: unknown value 7");
}

TEST(SpecValidationTest, DatasetNameKnown) {
  JobSpec spec = MinimalSpec();
  spec.mutable_dataset()->set_name("imagenet");
  ExpectViolation(spec,
                  "spec.dataset.name: must be one of fashion-mnist, idx, cifar10, synthetic, got "
                  "\"imagenet\"");
}

TEST(SpecValidationTest, DatasetDirRequiredForFileFormats) {
  JobSpec spec = MinimalSpec();
  spec.mutable_dataset()->set_name("cifar10");
  ExpectViolation(spec, "spec.dataset.data_dir: required for dataset \"cifar10\"");
  spec.mutable_dataset()->set_name("idx");
  ExpectViolation(spec, "spec.dataset.data_dir: required for dataset \"idx\"");
}

TEST(SpecValidationTest, DatasetDirAbsolute) {
  JobSpec spec = MinimalSpec();
  spec.mutable_dataset()->set_data_dir("data/fmnist");
  ExpectViolation(spec, "spec.dataset.data_dir: must be an absolute path, got \"data/fmnist\"");
}

TEST(SpecValidationTest, DatasetDirNoParentReferences) {
  JobSpec spec = MinimalSpec();
  spec.mutable_dataset()->set_data_dir("/data/../etc");
  ExpectViolation(spec,
                  "spec.dataset.data_dir: must not contain \"..\" or NUL, got \"/data/../etc\"");
  spec.mutable_dataset()->set_data_dir("/data/..");
  EXPECT_THAT(ValidateJobSpec(spec).message(), HasSubstr("must not contain \"..\""));
  spec.mutable_dataset()->set_data_dir("/data/..hidden");  // A name, not a parent reference.
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
}

TEST(SpecValidationTest, DatasetDirLength) {
  JobSpec spec = MinimalSpec();
  spec.mutable_dataset()->set_data_dir("/" + std::string(4096, 'd'));
  ExpectViolation(spec, "spec.dataset.data_dir: must be at most 4096 bytes, got 4097");
}

JobSpec SyntheticSpec() {
  JobSpec spec = MinimalSpec();
  spec.mutable_dataset()->set_name("synthetic");
  v1::SyntheticDataset& s = *spec.mutable_dataset()->mutable_synthetic();
  s.set_channels(3);
  s.set_height(32);
  s.set_width(32);
  s.set_classes(10);
  s.set_train_size(1024);
  s.set_test_size(256);
  return spec;
}

TEST(SpecValidationTest, SyntheticRequiredAndExclusive) {
  JobSpec spec = SyntheticSpec();
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
  spec.mutable_dataset()->clear_synthetic();
  ExpectViolation(spec, "spec.dataset.synthetic: required for dataset \"synthetic\"");

  spec = SyntheticSpec();
  spec.mutable_dataset()->set_data_dir("/tmp");
  ExpectViolation(spec, "spec.dataset.data_dir: must be empty for dataset \"synthetic\"");

  spec = MinimalSpec();
  *spec.mutable_dataset()->mutable_synthetic() = SyntheticSpec().dataset().synthetic();
  ExpectViolation(spec,
                  "spec.dataset.synthetic: only allowed for dataset \"synthetic\", got "
                  "\"fashion-mnist\"");
}

TEST(SpecValidationTest, SyntheticShape) {
  JobSpec spec = SyntheticSpec();
  spec.mutable_dataset()->mutable_synthetic()->set_channels(0);
  ExpectViolation(spec, "spec.dataset.synthetic.channels: must be in [1, 64], got 0");
  spec = SyntheticSpec();
  spec.mutable_dataset()->mutable_synthetic()->set_height(4097);
  ExpectViolation(spec, "spec.dataset.synthetic.height: must be in [1, 4096], got 4097");
  spec = SyntheticSpec();
  spec.mutable_dataset()->mutable_synthetic()->set_width(0);
  ExpectViolation(spec, "spec.dataset.synthetic.width: must be in [1, 4096], got 0");
  spec = SyntheticSpec();
  spec.mutable_dataset()->mutable_synthetic()->set_classes(1);
  ExpectViolation(spec, "spec.dataset.synthetic.classes: must be in [2, 100000], got 1");
  spec = SyntheticSpec();
  spec.mutable_dataset()->mutable_synthetic()->set_train_size(0);
  ExpectViolation(spec, "spec.dataset.synthetic.train_size: must be in [1, 100000000], got 0");
  spec = SyntheticSpec();
  spec.mutable_dataset()->mutable_synthetic()->set_test_size(100000001);
  ExpectViolation(spec,
                  "spec.dataset.synthetic.test_size: must be in [0, 100000000], got 100000001");
}

TEST(SpecValidationTest, BatchSize) {
  JobSpec spec = MinimalSpec();
  spec.set_batch_size(0);
  ExpectViolation(spec, "spec.batch_size: must be in [1, 65536], got 0");
  spec.set_batch_size(65537);
  ExpectViolation(spec, "spec.batch_size: must be in [1, 65536], got 65537");
}

TEST(SpecValidationTest, BatchSizeDivisibleByRanks) {
  JobSpec spec = MinimalSpec();
  spec.mutable_resources()->set_workers(3);
  spec.mutable_resources()->set_devices_per_worker(2);
  ExpectViolation(spec,
                  "spec.batch_size: must be divisible by the number of ranks (resources.workers * "
                  "resources.devices_per_worker = 6), got 128");
  spec.set_batch_size(126);
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
}

TEST(SpecValidationTest, Epochs) {
  JobSpec spec = MinimalSpec();
  spec.set_epochs(10001);
  ExpectViolation(spec, "spec.epochs: must be in [1, 10000], got 10001");
}

TEST(SpecValidationTest, LearningRate) {
  JobSpec spec = MinimalSpec();
  spec.mutable_optimizer()->set_learning_rate(0);
  ExpectViolation(spec, "spec.optimizer.learning_rate: must be finite and in (0, 10], got 0");
  spec.mutable_optimizer()->set_learning_rate(std::nan(""));
  ExpectViolation(spec, "spec.optimizer.learning_rate: must be finite and in (0, 10], got nan");
  spec.mutable_optimizer()->set_learning_rate(11);
  ExpectViolation(spec, "spec.optimizer.learning_rate: must be finite and in (0, 10], got 11");
}

TEST(SpecValidationTest, Momentum) {
  JobSpec spec = MinimalSpec();
  spec.mutable_optimizer()->set_momentum(1.0);
  ExpectViolation(spec, "spec.optimizer.momentum: must be finite and in [0, 1), got 1");
  spec.mutable_optimizer()->set_momentum(-0.1);
  ExpectViolation(spec, "spec.optimizer.momentum: must be finite and in [0, 1), got -0.1");
}

TEST(SpecValidationTest, WeightDecay) {
  JobSpec spec = MinimalSpec();
  spec.mutable_optimizer()->set_weight_decay(std::numeric_limits<double>::infinity());
  ExpectViolation(spec, "spec.optimizer.weight_decay: must be finite and in [0, 1), got inf");
}

TEST(SpecValidationTest, StepSchedule) {
  JobSpec spec = MinimalSpec();
  spec.mutable_lr_schedule()->mutable_step()->set_step_epochs(0);
  spec.mutable_lr_schedule()->mutable_step()->set_gamma(0.1);
  ExpectViolation(spec, "spec.lr_schedule.step.step_epochs: must be in [1, 10], got 0");
  spec.mutable_lr_schedule()->mutable_step()->set_step_epochs(5);
  spec.mutable_lr_schedule()->mutable_step()->set_gamma(0);
  ExpectViolation(spec, "spec.lr_schedule.step.gamma: must be finite and in (0, 1], got 0");
}

TEST(SpecValidationTest, MultiStepMilestones) {
  JobSpec spec = MinimalSpec();
  auto& ms = *spec.mutable_lr_schedule()->mutable_multi_step();
  ms.set_gamma(0.1);
  ExpectViolation(spec, "spec.lr_schedule.multi_step.milestones: must have 1 to 64 entries, got 0");
  ms.add_milestones(5);
  ms.add_milestones(5);
  ExpectViolation(spec,
                  "spec.lr_schedule.multi_step.milestones[1]: must be greater than the previous "
                  "milestone 5, got 5");
  ms.set_milestones(1, 10);
  ExpectViolation(spec,
                  "spec.lr_schedule.multi_step.milestones[1]: must be in [1, epochs - 1 = 9], got 10");
  ms.set_milestones(1, 9);
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  ms.set_gamma(1.5);
  ExpectViolation(spec, "spec.lr_schedule.multi_step.gamma: must be finite and in (0, 1], got 1.5");
}

TEST(SpecValidationTest, CosineMinLearningRate) {
  JobSpec spec = MinimalSpec();
  spec.mutable_lr_schedule()->mutable_cosine()->set_min_learning_rate(0.2);
  ExpectViolation(spec,
                  "spec.lr_schedule.cosine.min_learning_rate: must be finite and in "
                  "[0, optimizer.learning_rate = 0.1], got 0.2");
}

TEST(SpecValidationTest, PrecisionAwareSchedule) {
  JobSpec spec = MinimalSpec();
  auto& pa = *spec.mutable_lr_schedule()->mutable_precision_aware();
  pa.set_step_epochs(10001);
  ExpectViolation(spec,
                  "spec.lr_schedule.precision_aware.step_epochs: must be in [1, 10000], got 10001");
  pa.set_step_epochs(0);  // Default.
  pa.set_gamma(0);
  ExpectViolation(spec,
                  "spec.lr_schedule.precision_aware.gamma: must be finite and in (0, 1], got 0");
  pa.clear_gamma();
  pa.set_floor_ratio(2);
  ExpectViolation(spec,
                  "spec.lr_schedule.precision_aware.floor_ratio: must be finite and in (0, 1], got 2");
}

TEST(SpecValidationTest, PrecisionKindKnown) {
  JobSpec spec = MinimalSpec();
  spec.mutable_precision()->set_kind(static_cast<PrecisionPolicySpec::Kind>(42));
  ExpectViolation(spec, "spec.precision.kind: unknown value 42");
}

TEST(SpecValidationTest, Rounding) {
  JobSpec spec = MinimalSpec();
  spec.mutable_precision()->set_rounding(static_cast<v1::Rounding>(9));
  ExpectViolation(spec, "spec.precision.rounding: unknown value 9");
}

TEST(SpecValidationTest, LadderEntriesInRangeAndIncreasing) {
  JobSpec spec = MinimalSpec();
  auto& p = *spec.mutable_precision();
  p.add_ladder(8);
  p.add_ladder(17);
  ExpectViolation(spec, "spec.precision.ladder[1]: must be in [2, 16], got 17");
  p.set_ladder(1, 8);
  ExpectViolation(spec,
                  "spec.precision.ladder[1]: must be greater than the previous entry 8, got 8");
  p.set_ladder(0, 1);
  p.set_ladder(1, 8);
  ExpectViolation(spec, "spec.precision.ladder[0]: must be in [2, 16], got 1");
}

TEST(SpecValidationTest, LadderLength) {
  JobSpec spec = MinimalSpec();
  for (uint32_t bits = 2; bits <= 10; ++bits) spec.mutable_precision()->add_ladder(bits);
  ExpectViolation(spec, "spec.precision.ladder: must have 1 to 8 entries, got 9");
}

TEST(SpecValidationTest, ResolutionEpochs) {
  JobSpec spec = MinimalSpec();
  spec.mutable_precision()->set_resolution_epochs(0);
  ExpectViolation(spec, "spec.precision.resolution_epochs: must be in [1, 1000], got 0");
}

TEST(SpecValidationTest, Patience) {
  JobSpec spec = MinimalSpec();
  spec.mutable_precision()->set_patience(1001);
  ExpectViolation(spec, "spec.precision.patience: must be in [1, 1000], got 1001");
}

TEST(SpecValidationTest, ThresholdParameters) {
  JobSpec spec = MinimalSpec();
  spec.mutable_precision()->set_alpha(0);
  ExpectViolation(spec, "spec.precision.alpha: must be finite and in (0, 100], got 0");
  spec = MinimalSpec();
  spec.mutable_precision()->set_beta(-1);
  ExpectViolation(spec, "spec.precision.beta: must be finite and in [0, 100], got -1");
  spec = MinimalSpec();
  spec.mutable_precision()->set_lambda(11);
  ExpectViolation(spec, "spec.precision.lambda: must be finite and in [0, 10], got 11");
}

TEST(SpecValidationTest, PolicyEpochIterations) {
  JobSpec spec = MinimalSpec();
  spec.mutable_precision()->set_policy_epoch_iterations(10000001);
  ExpectViolation(spec,
                  "spec.precision.policy_epoch_iterations: must be in [0, 10000000], got 10000001");
}

TEST(SpecValidationTest, MuppetParametersOnlyWithMuppet) {
  JobSpec spec = MinimalSpec();
  spec.mutable_precision()->set_kind(PrecisionPolicySpec::KIND_FP32);
  spec.mutable_precision()->set_patience(2);
  ExpectViolation(spec,
                  "spec.precision.patience: only allowed with kind KIND_MUPPET, got kind KIND_FP32");
  spec.mutable_precision()->clear_patience();
  spec.mutable_precision()->add_ladder(8);
  ExpectViolation(spec,
                  "spec.precision.ladder: only allowed with kind KIND_MUPPET, got kind KIND_FP32");
}

TEST(SpecValidationTest, FixedBits) {
  JobSpec spec = MinimalSpec();
  spec.mutable_precision()->set_kind(PrecisionPolicySpec::KIND_FIXED);
  ExpectViolation(spec, "spec.precision.fixed_bits: must be in [2, 16] or 32, got 0");
  spec.mutable_precision()->set_fixed_bits(24);
  ExpectViolation(spec, "spec.precision.fixed_bits: must be in [2, 16] or 32, got 24");
  for (uint32_t bits : {2u, 8u, 16u, 32u}) {
    spec.mutable_precision()->set_fixed_bits(bits);
    EXPECT_TRUE(ValidateJobSpec(spec).ok()) << bits;
  }
  spec.mutable_precision()->set_kind(PrecisionPolicySpec::KIND_MUPPET);
  ExpectViolation(spec,
                  "spec.precision.fixed_bits: only allowed with kind KIND_FIXED, got kind "
                  "KIND_MUPPET");
}

JobSpec ScheduleSpec() {
  JobSpec spec = MinimalSpec();
  auto& p = *spec.mutable_precision();
  p.set_kind(PrecisionPolicySpec::KIND_SCHEDULE);
  for (auto [epoch, bits] : {std::pair{0u, 8u}, {3u, 12u}, {6u, 32u}}) {
    auto* step = p.add_schedule();
    step->set_epoch(epoch);
    step->set_bits(bits);
  }
  return spec;
}

TEST(SpecValidationTest, ScheduleRequiredAndExclusive) {
  JobSpec spec = ScheduleSpec();
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
  spec.mutable_precision()->clear_schedule();
  ExpectViolation(spec,
                  "spec.precision.schedule: must have 1 to 64 steps for kind KIND_SCHEDULE, got 0");
  spec = ScheduleSpec();
  spec.mutable_precision()->set_kind(PrecisionPolicySpec::KIND_FP32);
  ExpectViolation(spec,
                  "spec.precision.schedule: only allowed with kind KIND_SCHEDULE, got kind KIND_FP32");
}

TEST(SpecValidationTest, ScheduleStartsAtEpochZero) {
  JobSpec spec = ScheduleSpec();
  spec.mutable_precision()->mutable_schedule(0)->set_epoch(1);
  ExpectViolation(spec, "spec.precision.schedule[0].epoch: must be 0 for the first step, got 1");
}

TEST(SpecValidationTest, ScheduleEpochsIncreaseAndFit) {
  JobSpec spec = ScheduleSpec();
  spec.mutable_precision()->mutable_schedule(2)->set_epoch(3);
  ExpectViolation(spec,
                  "spec.precision.schedule[2].epoch: must be greater than the previous step's 3, "
                  "got 3");
  spec.mutable_precision()->mutable_schedule(2)->set_epoch(10);
  ExpectViolation(spec, "spec.precision.schedule[2].epoch: must be below epochs = 10, got 10");
}

TEST(SpecValidationTest, ScheduleBitsValidAndClimbing) {
  JobSpec spec = ScheduleSpec();
  spec.mutable_precision()->mutable_schedule(1)->set_bits(20);
  ExpectViolation(spec, "spec.precision.schedule[1].bits: must be in [2, 16] or 32, got 20");
  spec.mutable_precision()->mutable_schedule(1)->set_bits(8);
  ExpectViolation(spec,
                  "spec.precision.schedule[1].bits: must be greater than the previous step's 8 "
                  "(the policy only climbs), got 8");
}

TEST(SpecValidationTest, Workers) {
  JobSpec spec = MinimalSpec();
  spec.set_batch_size(2048);
  spec.mutable_resources()->set_workers(2048);
  ExpectViolation(spec, "spec.resources.workers: must be in [1, 1024], got 2048");
}

TEST(SpecValidationTest, DevicesPerWorker) {
  JobSpec spec = MinimalSpec();
  spec.mutable_resources()->set_devices_per_worker(128);
  ExpectViolation(spec, "spec.resources.devices_per_worker: must be in [1, 64], got 128");
}

TEST(SpecValidationTest, DeviceKind) {
  JobSpec spec = MinimalSpec();
  spec.mutable_resources()->set_device_kind(static_cast<v1::DeviceKind>(5));
  ExpectViolation(spec, "spec.resources.device_kind: unknown value 5");
  spec.mutable_resources()->set_device_kind(v1::DEVICE_KIND_CUDA);
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
}

TEST(SpecValidationTest, CpuThreadsPerRank) {
  JobSpec spec = MinimalSpec();
  spec.mutable_resources()->set_cpu_threads_per_rank(1025);
  ExpectViolation(spec, "spec.resources.cpu_threads_per_rank: must be in [0, 1024], got 1025");
}

TEST(SpecValidationTest, CheckpointInterval) {
  JobSpec spec = MinimalSpec();
  spec.set_checkpoint_interval_epochs(11);
  ExpectViolation(spec, "spec.checkpoint_interval_epochs: must be in [0, 10], got 11");
}

TEST(SpecValidationTest, MaxRestartsDefaultsToThreeAndIsBounded) {
  JobSpec spec = MinimalSpec();
  ApplyJobSpecDefaults(spec);
  EXPECT_EQ(spec.max_restarts(), 3u);
  spec.set_max_restarts(0);  // Explicitly none: kept.
  ApplyJobSpecDefaults(spec);
  EXPECT_EQ(spec.max_restarts(), 0u);
  spec.set_max_restarts(101);
  ExpectViolation(spec, "spec.max_restarts: must be in [0, 100], got 101");
}

TEST(SpecValidationTest, Priority) {
  JobSpec spec = MinimalSpec();
  spec.set_priority(-1001);
  ExpectViolation(spec, "spec.priority: must be in [-1000, 1000], got -1001");
}

TEST(SpecValidationTest, LabelCount) {
  JobSpec spec = MinimalSpec();
  for (int i = 0; i < 65; ++i) (*spec.mutable_labels())["k" + std::to_string(i)] = "v";
  ExpectViolation(spec, "spec.labels: must have at most 64 entries, got 65");
}

TEST(SpecValidationTest, LabelKey) {
  JobSpec spec = MinimalSpec();
  (*spec.mutable_labels())["Team"] = "ml";
  ExpectViolation(spec,
                  "spec.labels: key must be 1 to 63 characters from [a-z0-9_.-], starting and "
                  "ending with [a-z0-9], got \"Team\"");
  spec.mutable_labels()->clear();
  (*spec.mutable_labels())["team-"] = "ml";
  EXPECT_THAT(ValidateJobSpec(spec).message(), HasSubstr("got \"team-\""));
  spec.mutable_labels()->clear();
  (*spec.mutable_labels())["team.ml_2"] = "ml";
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
}

TEST(SpecValidationTest, LabelValueLength) {
  JobSpec spec = MinimalSpec();
  (*spec.mutable_labels())["team"] = std::string(257, 'x');
  ExpectViolation(spec, "spec.labels[\"team\"]: must be at most 256 characters, got 257");
}

TEST(PrecisionBitsTest, AcceptsFixedPointAndFp32Only) {
  EXPECT_FALSE(IsValidPrecisionBits(0));
  EXPECT_FALSE(IsValidPrecisionBits(1));
  EXPECT_TRUE(IsValidPrecisionBits(2));
  EXPECT_TRUE(IsValidPrecisionBits(16));
  EXPECT_FALSE(IsValidPrecisionBits(17));
  EXPECT_FALSE(IsValidPrecisionBits(31));
  EXPECT_TRUE(IsValidPrecisionBits(32));
}

}  // namespace
}  // namespace muppet
