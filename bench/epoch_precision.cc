// Training throughput per precision: for each model, epochs of minibatch SGD on Fashion-MNIST
// (a slice of the training set) at FP32 and at every fixed-point word length of MuPPET's
// ladder, interleaved round by round in one process, each timed after a warm-up epoch. One JSON
// line per (model, precision, fixed-point route) with the ratio fp32_seconds / seconds (> 1:
// faster than FP32) and the full-epoch time it implies.
//
//   bazel run -c opt //bench:epoch_precision -- --models=resnet20,alexnet --batches=40
#include <omp.h>

#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/check.h"
#include "bench/harness.h"
#include "proto/spec_validation.h"
#include "worker/data/dataset.h"
#include "worker/models/model.h"
#include "worker/train/trainer.h"

ABSL_FLAG(std::string, models, "resnet20,alexnet", "Models to time, comma-separated.");
ABSL_FLAG(int64_t, batches, 40, "Minibatches of 128 per timed epoch.");
ABSL_FLAG(int64_t, rounds, 2, "Rounds over all precisions; the fastest epoch of each counts.");
ABSL_FLAG(std::string, precisions, "32,8,12,14,16",
          "Precisions to time (32: FP32), comma-separated; FP32 is always included.");
ABSL_FLAG(std::string, data_dir, std::string(muppet::kFashionMnistDir), "Fashion-MNIST files.");
ABSL_FLAG(std::string, routes, "integer,grid,auto",
          "Fixed-point routes to time at each fixed-point precision, comma-separated.");

namespace muppet::bench {
namespace {

constexpr int64_t kBatch = 128;
constexpr int64_t kFullEpochImages = 60000;
std::vector<int> Precisions() {
  std::vector<int> bits = {kFp32Bits};
  for (absl::string_view p : absl::StrSplit(absl::GetFlag(FLAGS_precisions), ',')) {
    int b = 0;
    MUPPET_CHECK(absl::SimpleAtoi(p, &b) && IsValidPrecisionBits(b)) << "--precisions: " << p;
    if (b != kFp32Bits) bits.push_back(b);
  }
  return bits;
}

std::vector<FixedPointRoute> Routes() {
  std::vector<FixedPointRoute> routes;
  for (absl::string_view r : absl::StrSplit(absl::GetFlag(FLAGS_routes), ',')) {
    bool known = false;
    for (FixedPointRoute route :
         {FixedPointRoute::kInteger, FixedPointRoute::kGrid, FixedPointRoute::kAuto}) {
      if (r == RouteName(route)) {
        routes.push_back(route);
        known = true;
      }
    }
    if (!known) Fail(absl::StrCat("--routes: unknown route \"", r, "\""));
  }
  return routes;
}

// Seconds of one warm training epoch of `model_name` at `bits` by `route` (auto times its
// candidates in the warm-up epoch).
double EpochSeconds(const std::string& model_name, const TrainTest& data, int bits,
                    FixedPointRoute route) {
  auto model = BuildModel({.name = model_name,
                           .in_channels = data.train.channels,
                           .height = data.train.height,
                           .width = data.train.width,
                           .num_classes = data.train.classes,
                           .seed = 1});
  MUPPET_CHECK(model.ok()) << model.status();
  (*model)->precision().bits = bits;
  Trainer trainer(**model, data,
                  {.epochs = 2, .batch_size = kBatch, .seed = 1, .fixed_point_route = route});
  MUPPET_CHECK(trainer.TrainEpoch(0, 0.01).ok());  // Warm-up: primitives, scratch, pages.
  absl::StatusOr<EpochResult> timed = trainer.TrainEpoch(1, 0.01);
  MUPPET_CHECK(timed.ok()) << timed.status();
  return timed->seconds;
}

void Run() {
  const int64_t batches = absl::GetFlag(FLAGS_batches);
  v1::DatasetSpec spec;
  spec.set_name("fashion-mnist");
  spec.set_data_dir(absl::GetFlag(FLAGS_data_dir));
  spec.set_train_limit(static_cast<uint32_t>(batches * kBatch));
  spec.set_test_limit(static_cast<uint32_t>(kBatch));  // Evaluation is not timed.
  absl::StatusOr<TrainTest> data = LoadDataset(spec, 0, 1);
  MUPPET_CHECK(data.ok()) << data.status();
  const std::vector<std::string> models = absl::StrSplit(absl::GetFlag(FLAGS_models), ',');
  for (const std::string& name : models) {
    // (bits, route) -> the fastest epoch; FP32 has one route.
    std::map<std::pair<int, FixedPointRoute>, double> best;
    std::vector<std::pair<int, FixedPointRoute>> cases = {{kFp32Bits, FixedPointRoute::kAuto}};
    for (int bits : Precisions()) {
      if (bits == kFp32Bits) continue;
      for (FixedPointRoute route : Routes()) cases.push_back({bits, route});
    }
    for (int64_t round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
      for (const auto& c : cases) {
        const double s = EpochSeconds(name, *data, c.first, c.second);
        if (!best.count(c) || s < best[c]) best[c] = s;
      }
    }
    const double fp32 = best[{kFp32Bits, FixedPointRoute::kAuto}];
    for (const auto& c : cases) {
      const double images_per_second = batches * kBatch / best[c];
      JsonLine()
          .Add("bench", "epoch_precision")
          .Add("model", name)
          .Add("precision_bits", c.first)
          .Add("route", c.first == kFp32Bits ? "fp32" : std::string(RouteName(c.second)))
          .Add("batch_size", kBatch)
          .Add("threads", omp_get_max_threads())
          .Add("images_per_second", images_per_second)
          .Add("epoch_seconds", kFullEpochImages / images_per_second)
          .Add("speedup_vs_fp32", fp32 / best[c])
          .Print();
    }
  }
}

}  // namespace
}  // namespace muppet::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  muppet::bench::PrintPlatform("epoch_precision");
  muppet::bench::Run();
}
