#include "base/train_flags.h"

#include <optional>
#include <string>

#include "absl/flags/flag.h"

// The training flags of muppet-train and `muppetctl submit`: one definition, one meaning.
ABSL_FLAG(std::string, model, "", "Model: lenet5, resnet20, alexnet, resnet18, googlenet.");
ABSL_FLAG(int64_t, num_classes, 0,
          "Classes of the model's output (0: the dataset's); every label must be below it.");
ABSL_FLAG(std::string, dataset, "fashion-mnist",
          "Dataset: fashion-mnist, idx, cifar10, synthetic.");
ABSL_FLAG(std::string, synthetic, "",
          "Shape of --dataset=synthetic: <channels>x<height>x<width>,<classes>,<train>,<test>, "
          "e.g. 3x32x32,10,50000,10000.");
ABSL_FLAG(std::string, data_dir, "",
          "Directory of the dataset files (default for fashion-mnist: "
          "/usr/share/datasets/fashion-mnist).");
ABSL_FLAG(int64_t, epochs, 10, "Training epochs.");
ABSL_FLAG(int64_t, batch_size, 128, "Minibatch size.");
ABSL_FLAG(double, lr, 0.1, "Initial learning rate.");
ABSL_FLAG(double, momentum, 0.9, "SGD momentum.");
ABSL_FLAG(double, weight_decay, 1e-4, "L2 weight decay.");
ABSL_FLAG(std::string, lr_schedule, "",
          "constant | step:<epochs>:<gamma> | multistep:<e1>,<e2>,...:<gamma> | "
          "cosine[:<min-lr>] | precision-aware[:<step-epochs>:<gamma>]. Default: precision-aware "
          "(constant in fixed point, x0.1 every 15 FP32 epochs down to lr/100) with "
          "--policy=muppet, constant otherwise.");
ABSL_FLAG(bool, augment, false, "Random crop (4-pixel padding) and horizontal flip.");
ABSL_FLAG(int64_t, train_limit, 0, "Train on the first N images only (0: all).");
ABSL_FLAG(int64_t, test_limit, 0, "Evaluate on the first N images only (0: all).");
ABSL_FLAG(int64_t, seed, 0, "Seed for initialisation, shuffling and augmentation.");
ABSL_FLAG(int64_t, checkpoint_interval_epochs, 0,
          "Checkpoint every N epochs, besides after every precision switch (0: only then); "
          "checkpoints go to muppet-train's --checkpoint-dir.");
ABSL_FLAG(std::string, policy, "muppet",
          "Precision policy: muppet (climb --ladder by gradient diversity, then FP32) | fp32 | "
          "fixed:<bits> | schedule:<epoch>:<bits>,<epoch>:<bits>,...");
ABSL_FLAG(std::string, rounding, "stochastic", "Fixed-point rounding: stochastic | nearest.");
ABSL_FLAG(std::string, fixed_point_route, "auto",
          "How fixed-point layer passes compute: auto (the faster, timed at first use) | integer "
          "(muppet's integer kernels) | grid (the codes through FP32 primitives).");
ABSL_FLAG(std::string, ladder, "",
          "muppet policy: word lengths to climb, e.g. 8,12,14,16 (the default), or auto: those "
          "of the default that train faster than FP32 here, timed at start (muppet-train, one "
          "rank).");
ABSL_FLAG(int64_t, resolution, 0,
          "muppet: window r of policy epochs per diversity measure (default 3).");
ABSL_FLAG(int64_t, patience, 0, "muppet: violations y that trigger a climb (default 2).");
ABSL_FLAG(std::optional<double>, alpha, std::nullopt,
          "muppet: threshold T(j) = alpha + beta * exp(-lambda * j); default 1.");
ABSL_FLAG(std::optional<double>, beta, std::nullopt, "muppet: see --alpha; default 1.5.");
ABSL_FLAG(std::optional<double>, lambda, std::nullopt, "muppet: see --alpha; default 0.1.");
ABSL_FLAG(std::string, device, "cpu",
          "What each rank trains on: cpu | cuda (one GPU per rank; the GPU engine, one rank for "
          "now).");
ABSL_FLAG(int64_t, policy_epoch_iterations, 0,
          "muppet: length of a policy epoch in iterations (0: a real epoch).");

namespace muppet {

TrainFlags TrainFlagsFromCommandLine() {
  return {.model = absl::GetFlag(FLAGS_model),
          .num_classes = absl::GetFlag(FLAGS_num_classes),
          .dataset = absl::GetFlag(FLAGS_dataset),
          .data_dir = absl::GetFlag(FLAGS_data_dir),
          .epochs = absl::GetFlag(FLAGS_epochs),
          .batch_size = absl::GetFlag(FLAGS_batch_size),
          .lr = absl::GetFlag(FLAGS_lr),
          .momentum = absl::GetFlag(FLAGS_momentum),
          .weight_decay = absl::GetFlag(FLAGS_weight_decay),
          .lr_schedule = absl::GetFlag(FLAGS_lr_schedule),
          .synthetic = absl::GetFlag(FLAGS_synthetic),
          .augment = absl::GetFlag(FLAGS_augment),
          .train_limit = absl::GetFlag(FLAGS_train_limit),
          .test_limit = absl::GetFlag(FLAGS_test_limit),
          .seed = absl::GetFlag(FLAGS_seed),
          .checkpoint_interval_epochs = absl::GetFlag(FLAGS_checkpoint_interval_epochs),
          .policy = absl::GetFlag(FLAGS_policy),
          .rounding = absl::GetFlag(FLAGS_rounding),
          .fixed_point_route = absl::GetFlag(FLAGS_fixed_point_route),
          .ladder = absl::GetFlag(FLAGS_ladder),
          .resolution = absl::GetFlag(FLAGS_resolution),
          .patience = absl::GetFlag(FLAGS_patience),
          .alpha = absl::GetFlag(FLAGS_alpha),
          .beta = absl::GetFlag(FLAGS_beta),
          .lambda = absl::GetFlag(FLAGS_lambda),
          .policy_epoch_iterations = absl::GetFlag(FLAGS_policy_epoch_iterations),
          .device = absl::GetFlag(FLAGS_device)};
}

}  // namespace muppet
