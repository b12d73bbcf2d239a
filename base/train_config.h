// muppet-train's command line, turned into a JobSpec so that the standalone trainer obeys the
// same defaults and validation rules as the service.
#ifndef MUPPET_BASE_TRAIN_CONFIG_H_
#define MUPPET_BASE_TRAIN_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "muppet/v1/spec.pb.h"

namespace muppet {

// Flag values as the user typed them.
struct TrainFlags {
  std::string model;
  int64_t num_classes = 0;  // 0: the dataset's.
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  int64_t epochs = 10;
  int64_t batch_size = 128;
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 1e-4;
  std::string lr_schedule;  // Empty: the spec's default for the policy.
  std::string synthetic;    // <channels>x<height>x<width>,<classes>,<train>,<test>
  bool augment = false;
  int64_t train_limit = 0;
  int64_t test_limit = 0;
  int64_t seed = 0;
  int64_t checkpoint_interval_epochs = 0;  // 0: checkpoints at precision switches only.
  // Precision policy: muppet | fp32 | fixed:<bits> | schedule:<epoch>:<bits>,...
  std::string policy = "muppet";
  std::string rounding = "stochastic";     // stochastic | nearest
  std::string fixed_point_route = "auto";  // auto | integer | grid
  // MUPPET parameters; unset (empty, 0 or nullopt) means the spec's default.
  std::string ladder;  // e.g. "8,12,14,16", or "auto" (the default levels, measured)
  int64_t resolution = 0;
  int64_t patience = 0;
  std::optional<double> alpha, beta, lambda;
  int64_t policy_epoch_iterations = 0;
  // Ranks: muppetctl's --workers and --devices-per-worker, muppet-train's --nproc (one worker).
  int64_t workers = 1;
  int64_t devices_per_worker = 1;
  std::string device = "cpu";  // cpu | cuda: what each rank trains on.
};

// Builds, defaults and validates the JobSpec the flags describe. Errors name the flag, e.g.
// "--batch-size: must be in [1, 65536], got 0".
absl::StatusOr<v1::JobSpec> SpecFromFlags(const TrainFlags& flags);

// Parses --synthetic: <channels>x<height>x<width>,<classes>,<train images>,<test images>.
absl::StatusOr<v1::SyntheticDataset> ParseSynthetic(const std::string& text);

// Parses --lr-schedule: constant | step:<epochs>:<gamma> | multistep:<e1>,<e2>,...:<gamma> |
// cosine[:<min-lr>] | precision-aware[:<step-epochs>:<gamma>].
absl::StatusOr<v1::LrSchedule> ParseLrSchedule(const std::string& text);

}  // namespace muppet

#endif  // MUPPET_BASE_TRAIN_CONFIG_H_
