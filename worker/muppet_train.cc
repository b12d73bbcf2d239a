// muppet-train: trains a model on one machine and reports every epoch.
//
//   muppet-train --model=lenet5 --epochs=2 --report=run.json
//
// Flags take dashed names (--batch-size); `muppet-train --help` lists them.
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "scheduler/policy_text.h"
#include "scheduler/precision_policy.h"
#include "worker/base/cli.h"
#include "worker/train/local_policy.h"
#include "worker/train/progress.h"
#include "worker/train/report.h"
#include "worker/train/run.h"
#include "worker/train/train_config.h"

ABSL_FLAG(std::string, model, "", "Model: lenet5, resnet20, alexnet, resnet18, googlenet.");
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
ABSL_FLAG(int64_t, threads, 0, "CPU threads (0: every core this process may use).");
ABSL_FLAG(int64_t, seed, 0, "Seed for initialisation, shuffling and augmentation.");
ABSL_FLAG(std::string, report, "", "Write a JSON report of the run to this file.");
ABSL_FLAG(std::string, policy, "muppet",
          "Precision policy: muppet (climb --ladder by gradient diversity, then FP32) | fp32 | "
          "fixed:<bits> | schedule:<epoch>:<bits>,<epoch>:<bits>,...");
ABSL_FLAG(std::string, rounding, "stochastic", "Fixed-point rounding: stochastic | nearest.");
ABSL_FLAG(std::string, ladder, "",
          "muppet: word lengths to climb before FP32 (default 8,12,14,16).");
ABSL_FLAG(int64_t, resolution, 0,
          "muppet: window r of policy epochs per diversity measure (default 3).");
ABSL_FLAG(int64_t, patience, 0, "muppet: violations y that trigger a climb (default 2).");
ABSL_FLAG(std::optional<double>, alpha, std::nullopt,
          "muppet: threshold T(j) = alpha + beta * exp(-lambda * j); default 1.");
ABSL_FLAG(std::optional<double>, beta, std::nullopt, "muppet: see --alpha; default 1.5.");
ABSL_FLAG(std::optional<double>, lambda, std::nullopt, "muppet: see --alpha; default 0.1.");
ABSL_FLAG(int64_t, policy_epoch_iterations, 0,
          "muppet: length of a policy epoch in iterations (0: a real epoch).");

namespace muppet {
namespace {

int UsableCores() {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "muppet-train: %s\n", message.c_str());
  return 2;
}

// Prints the run's header, then the progress display.
class Console : public RunObserver {
 public:
  Console(const v1::JobSpec& spec, const std::string& policy_text, int start_bits)
      : spec_(spec),
        policy_text_(policy_text),
        start_bits_(start_bits),
        display_(stdout, isatty(STDOUT_FILENO) != 0, static_cast<int>(spec.epochs())) {
    display_.SetPrecision(start_bits);
  }

  void OnStart(const RunStart& start) override {
    std::printf(
        "muppet-train: %s on %s (%lld train / %lld test images, %lld parameters), batch %u, "
        "%d threads, policy %s starting at %s\n",
        spec_.model().name().c_str(), spec_.dataset().name().c_str(),
        static_cast<long long>(start.train_images), static_cast<long long>(start.test_images),
        static_cast<long long>(start.parameters), spec_.batch_size(), omp_get_max_threads(),
        policy_text_.c_str(), PrecisionLabel(start_bits_).c_str());
  }
  void OnIteration(int epoch, int64_t done, int64_t total, double mean_loss,
                   double images_per_second, double elapsed_seconds) override {
    display_.OnIteration(epoch, done, total, mean_loss, images_per_second, elapsed_seconds);
  }
  void OnPrecisionSwitch(const PrecisionSwitchEvent& event) override {
    display_.OnPrecisionSwitch(event);
  }
  void OnEpochEnd(const EpochResult& result) override { display_.OnEpochEnd(result); }

 private:
  const v1::JobSpec& spec_;
  const std::string policy_text_;
  const int start_bits_;
  ProgressDisplay display_;
};

int Run() {
  const TrainFlags flags{.model = absl::GetFlag(FLAGS_model),
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
                         .policy = absl::GetFlag(FLAGS_policy),
                         .rounding = absl::GetFlag(FLAGS_rounding),
                         .ladder = absl::GetFlag(FLAGS_ladder),
                         .resolution = absl::GetFlag(FLAGS_resolution),
                         .patience = absl::GetFlag(FLAGS_patience),
                         .alpha = absl::GetFlag(FLAGS_alpha),
                         .beta = absl::GetFlag(FLAGS_beta),
                         .lambda = absl::GetFlag(FLAGS_lambda),
                         .policy_epoch_iterations = absl::GetFlag(FLAGS_policy_epoch_iterations)};
  if (flags.model.empty()) return Fail("--model is required; see --help");
  const int64_t threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0 || threads > 1024) {
    return Fail(absl::StrCat("--threads: must be in [0, 1024], got ", threads));
  }
  absl::StatusOr<v1::JobSpec> spec = SpecFromFlags(flags);
  if (!spec.ok()) return Fail(std::string(spec.status().message()));
  omp_set_num_threads(threads == 0 ? UsableCores() : static_cast<int>(threads));

  absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
      scheduler::MakePolicy(spec->precision());
  if (!policy.ok()) return Fail(std::string(policy.status().message()));
  LocalPolicyController controller(*std::move(policy));
  const std::string policy_text = scheduler::PolicyText(spec->precision());
  Console console(*spec, policy_text, controller.precision_bits());
  absl::StatusOr<RunResult> run =
      RunTraining(*spec, controller.precision_bits(), controller, &console);
  if (!run.ok()) return Fail(std::string(run.status().message()));
  std::printf("final test accuracy %.4f, wall time %.1f s\n", run->final_test_accuracy,
              run->wall_seconds);

  const RunReport report{.model = spec->model().name(),
                         .dataset = spec->dataset().name(),
                         .policy = policy_text,
                         .batch_size = spec->batch_size(),
                         .threads = omp_get_max_threads(),
                         .seed = spec->seed(),
                         .epochs = run->epochs,
                         .final_test_accuracy = run->final_test_accuracy,
                         .wall_seconds = run->wall_seconds};
  const std::string report_path = absl::GetFlag(FLAGS_report);
  if (!report_path.empty()) {
    if (absl::Status s = WriteReport(report, report_path); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    std::printf("report written to %s\n", report_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace muppet

int main(int argc, char** argv) {
  muppet::SetVersionFlag("muppet-train");
  absl::SetProgramUsageMessage(
      "trains a CNN on one machine.\n  muppet-train --model=lenet5 --epochs=2 "
      "[--dataset=fashion-mnist] [--report=run.json]");
  std::vector<std::string> storage;
  std::vector<char*> args = muppet::DashedFlagsToUnderscores(argc, argv, storage);
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (positional.size() > 1) {
    return muppet::Fail(absl::StrCat("unexpected argument \"", positional[1], "\"; see --help"));
  }
  return muppet::Run();
}
