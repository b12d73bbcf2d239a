// Data-parallel training over real Gloo ranks (threads of this process, connected through an
// in-process store on 127.0.0.1): equivalence with one rank, identical models on every rank,
// switches at the same iteration, cancellation and a lost rank.
#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/train/trainer.h"

namespace muppet {
namespace {

using ::testing::HasSubstr;

TrainTest Synthetic(int64_t train_size) {
  v1::SyntheticDataset s;
  s.set_channels(1);
  s.set_height(12);
  s.set_width(12);
  s.set_classes(4);
  s.set_train_size(train_size);
  s.set_test_size(96);
  return MakeSynthetic(s, 23);
}

std::unique_ptr<Model> Build(const std::string& name, uint64_t seed, int bits) {
  auto model = BuildModel(
      {.name = name, .in_channels = 1, .height = 12, .width = 12, .num_classes = 4, .seed = seed});
  EXPECT_TRUE(model.ok()) << model.status();
  (*model)->precision().bits = bits;
  return *std::move(model);
}

struct RankRun {
  std::unique_ptr<Model> model;
  std::vector<EpochResult> epochs;
  absl::Status status;
  ReductionStats reduction;
};

// What each rank does with its model and trainer; returns the first error.
using Body = std::function<absl::Status(int rank, Trainer& trainer, RankRun& run)>;

absl::Status TrainEpochs(Trainer& trainer, int epochs, RankRun& run) {
  for (int e = 0; e < epochs; ++e) {
    absl::StatusOr<EpochResult> r = trainer.TrainEpoch(e, 0.05);
    if (!r.ok()) return r.status();
    run.epochs.push_back(*r);
  }
  return absl::OkStatus();
}

// Trains `ranks` ranks, one thread each. Every rank builds its model from its own seed (rank 0's
// is copied to the others at the start). `controllers[r]` may be null.
// `customise`, when set, adjusts each rank's options.
std::vector<RankRun> RunRanks(
    int ranks, const TrainTest& data, const std::string& model, int bits, TrainerOptions options,
    const Body& body, std::vector<PrecisionController*> controllers = {},
    const std::function<void(int, TrainerOptions&)>& customise = nullptr) {
  comm::InProcessStore store;
  std::vector<RankRun> runs(ranks);
  std::vector<std::thread> threads;
  controllers.resize(ranks, nullptr);
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r, options]() mutable {
      RankRun& run = runs[r];
      run.model = Build(model, 100 + r, bits);
      absl::StatusOr<std::unique_ptr<comm::Communicator>> comm = comm::ConnectGloo(
          {.rank = r, .size = ranks, .connect_timeout = absl::Seconds(30)}, store);
      if (!comm.ok()) {
        run.status = comm.status();
        return;
      }
      options.comm = comm->get();
      if (customise) customise(r, options);
      Trainer trainer(*run.model, data, options, controllers[r]);
      run.status = body(r, trainer, run);
      run.reduction = trainer.reduction_stats();
    });
  }
  for (std::thread& t : threads) t.join();
  return runs;
}

// max |a - b| over max |b|, over every parameter tensor.
double RelativeDifference(const Model& a, const Model& b) {
  double worst = 0;
  for (size_t l = 0; l < a.parameters().size(); ++l) {
    const Tensor& x = a.parameters()[l]->value;
    const Tensor& y = b.parameters()[l]->value;
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < x.size(); ++i) {
      diff = std::max(diff, std::abs(static_cast<double>(x[i]) - y[i]));
      scale = std::max(scale, std::abs(static_cast<double>(y[i])));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

bool Identical(const Model& a, const Model& b) {
  for (size_t l = 0; l < a.parameters().size(); ++l) {
    const Tensor& x = a.parameters()[l]->value;
    const Tensor& y = b.parameters()[l]->value;
    for (int64_t i = 0; i < x.size(); ++i) {
      if (x[i] != y[i]) return false;
    }
  }
  return true;
}

const TrainerOptions kOptions{.epochs = 1,
                              .batch_size = 128,
                              .seed = 9,
                              .sgd = {.momentum = 0.9, .weight_decay = 1e-4},
                              .reduction = {.timeout = absl::Seconds(30)}};

// 2 ranks at global batch 128 against 1 rank at batch 128, 20 FP32 steps of lenet5 (no
// BatchNorm, so per-rank statistics change nothing): the same gradients up to float summation
// order.
TEST(DataParallelTest, TwoRanksMatchOneRankInFp32) {
  const TrainTest data = Synthetic(128 * 20);
  auto single = Build("lenet5", 100, kFp32Bits);
  Trainer trainer(*single, data, kOptions);
  ASSERT_TRUE(trainer.TrainEpoch(0, 0.05).ok());

  for (int ranks : {2, 3}) {  // 3 ranks: shares of 43, 43 and 42 images.
    std::vector<RankRun> runs =
        RunRanks(ranks, data, "lenet5", kFp32Bits, kOptions,
                 [](int, Trainer& t, RankRun& run) { return TrainEpochs(t, 1, run); });
    for (int r = 0; r < ranks; ++r) {
      ASSERT_TRUE(runs[r].status.ok()) << r << ": " << runs[r].status;
      EXPECT_LT(RelativeDifference(*runs[r].model, *single), 1e-5) << ranks << " ranks, rank " << r;
      EXPECT_TRUE(Identical(*runs[r].model, *runs[0].model)) << "rank " << r;
    }
    // The epoch's metrics cover every rank's examples.
    EXPECT_EQ(runs[0].epochs[0].samples, 128 * 20);
    EXPECT_EQ(runs[1].epochs[0].samples, 128 * 20);
    EXPECT_NEAR(runs[0].epochs[0].train_loss, runs[1].epochs[0].train_loss, 1e-12);
    EXPECT_GT(runs[0].reduction.buckets, 0);
  }
}

// At a fixed-point level the ranks' models stay bit-identical (they sum the same codes), and
// the fixed-point allreduce carries int16 codes: half the float bytes for convolution and
// linear gradients. The codes cannot equal one rank's at batch 128: each rank quantises its
// activations and activation gradients with an exponent from its own 64 images, and its
// weight-gradient codes sit on the grid of the ranks' joint range, not of the sum.
TEST(DataParallelTest, FixedPointRanksStayIdenticalAndSendCodes) {
  const TrainTest data = Synthetic(128 * 8);
  for (const char* name : {"lenet5", "resnet20"}) {
    std::vector<RankRun> runs =
        RunRanks(2, data, name, 8, kOptions,
                 [](int, Trainer& t, RankRun& run) { return TrainEpochs(t, 2, run); });
    ASSERT_TRUE(runs[0].status.ok()) << runs[0].status;
    ASSERT_TRUE(runs[1].status.ok()) << runs[1].status;
    EXPECT_TRUE(Identical(*runs[0].model, *runs[1].model)) << name;
    EXPECT_LT(runs[0].epochs[1].train_loss, runs[0].epochs[0].train_loss) << name;
    const ReductionStats& s = runs[0].reduction;
    EXPECT_LT(s.wire_bytes, 0.6 * s.float_bytes) << name;
    EXPECT_GT(runs[0].epochs[1].rank_gradient_diversity, 0) << name;
  }
}

// Switches at policy epoch 1 (scripted); fails if a rank other than 0 consults it.
class ScriptedController : public PrecisionController {
 public:
  explicit ScriptedController(int rank) : rank_(rank) {}
  bool NeedsGradients() const override { return true; }
  absl::StatusOr<scheduler::Decision> EndPolicyEpoch(const PolicyEpochReport& report) override {
    if (rank_ != 0) return absl::InternalError("a follower's controller was consulted");
    diversities.push_back(report.rank_gradient_diversity);
    samples.push_back(report.metrics.samples);
    communication.push_back(report.metrics);
    return scheduler::Decision{.next_precision_bits = report.epoch >= 1 ? 12 : 8,
                               .switched = report.epoch == 1,
                               .window_closed = true};
  }
  std::vector<double> diversities;
  std::vector<int64_t> samples;
  std::vector<EpochResult> communication;  // The reports' metrics.

 private:
  int rank_;
};

TEST(DataParallelTest, EveryRankSwitchesAtTheIterationRankZeroDecides) {
  const TrainTest data = Synthetic(128 * 6);
  TrainerOptions options = kOptions;
  options.policy_epoch_iterations = 4;
  ScriptedController leader(0), follower(1);
  std::vector<RankRun> runs = RunRanks(
      2, data, "resnet20", 8, options,
      [](int, Trainer& t, RankRun& run) { return TrainEpochs(t, 2, run); }, {&leader, &follower});
  ASSERT_TRUE(runs[0].status.ok()) << runs[0].status;
  ASSERT_TRUE(runs[1].status.ok()) << runs[1].status;
  // 12 iterations: policy epochs end at iterations 4, 8 and 12; the second switches to 12 bits.
  for (const RankRun& run : runs) {
    ASSERT_EQ(run.epochs[1].switches.size(), 1u);
    EXPECT_EQ(run.epochs[1].switches[0].policy_epoch, 1);
    EXPECT_EQ(run.epochs[1].switches[0].to_bits, 12);
    EXPECT_EQ(run.epochs[1].precision_bits, 12);
  }
  EXPECT_TRUE(Identical(*runs[0].model, *runs[1].model));
  ASSERT_EQ(leader.samples.size(), 3u);
  EXPECT_EQ(leader.samples[0], 4 * 128);  // Both ranks' images.
  for (double d : leader.diversities) EXPECT_GT(d, 0);
  // Each policy epoch reports its own share of rank 0's gradient communication, which spans
  // the real epochs' boundary; together they are all of it.
  int64_t bytes = 0;
  double seconds = 0;
  for (const EpochResult& m : leader.communication) {
    EXPECT_GT(m.communication_bytes, 0);
    EXPECT_GT(m.communication_seconds, 0);
    EXPECT_GE(m.communication_exposed_seconds, 0);
    bytes += m.communication_bytes;
    seconds += m.communication_seconds;
  }
  EXPECT_EQ(bytes, runs[0].reduction.wire_bytes);
  EXPECT_NEAR(seconds, runs[0].reduction.busy_seconds, 1e-9);
}

// Sets the flag at the third iteration.
class CancelAtThird : public TrainingObserver {
 public:
  explicit CancelAtThird(std::atomic<bool>& flag) : flag_(flag) {}
  void OnIteration(int, int64_t done, int64_t, double, double, double) override {
    if (done == 3) flag_ = true;
  }

 private:
  std::atomic<bool>& flag_;
};

TEST(DataParallelTest, CancellingOneRankStopsEveryRankAfterTheSameStep) {
  const TrainTest data = Synthetic(128 * 10);
  std::atomic<bool> cancel{false};
  CancelAtThird observer(cancel);
  std::vector<RankRun> runs = RunRanks(
      2, data, "lenet5", kFp32Bits, kOptions,
      [&](int rank, Trainer& t, RankRun&) {
        return t.TrainEpoch(0, 0.05, rank == 1 ? &observer : nullptr).status();
      },
      {},
      [&](int rank, TrainerOptions& o) {
        if (rank == 1) o.cancel = &cancel;  // Only rank 1 is told.
      });
  EXPECT_EQ(runs[1].status, absl::CancelledError("training cancelled"));
  EXPECT_EQ(runs[0].status, absl::CancelledError("training cancelled on rank 1"));
  EXPECT_TRUE(Identical(*runs[0].model, *runs[1].model));  // Neither applied step 4.
}

TEST(DataParallelTest, ALostRankFailsTheOthersWithinTheTimeout) {
  const TrainTest data = Synthetic(128 * 4);
  TrainerOptions options = kOptions;
  options.reduction.timeout = absl::Seconds(5);
  const absl::Time start = absl::Now();
  std::vector<RankRun> runs =
      RunRanks(2, data, "lenet5", kFp32Bits, options, [](int rank, Trainer& t, RankRun& run) {
        if (rank == 1) return absl::OkStatus();  // Leaves.
        return TrainEpochs(t, 1, run);
      });
  EXPECT_TRUE(absl::IsUnavailable(runs[0].status) || absl::IsDeadlineExceeded(runs[0].status))
      << runs[0].status;
  EXPECT_THAT(runs[0].status.message(), HasSubstr("rank 0 of 2"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
}

}  // namespace
}  // namespace muppet
