// muppet-train: trains a model on one machine and reports every epoch.
//
//   muppet-train --model=lenet5 --epochs=2 --report=run.json
//
// Flags take dashed names (--batch-size); `muppet-train --help` lists them.
#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "base/cli.h"
#include "base/cpu.h"
#include "base/train_config.h"
#include "base/train_flags.h"
#include "kernels/cpu/platform.h"
#include "scheduler/policy_text.h"
#include "scheduler/precision_policy.h"
#include "worker/train/local_policy.h"
#include "worker/train/progress.h"
#include "worker/train/report.h"
#include "worker/train/run.h"

ABSL_FLAG(int64_t, threads, 0, "CPU threads (0: every core this process may use).");
ABSL_FLAG(std::string, report, "", "Write a JSON report of the run to this file.");

namespace muppet {
namespace {

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
    std::printf("muppet-train: kernels %s\n",
                kernels::DescribeKernelPlatform(kernels::DetectKernelPlatform()).c_str());
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
  const TrainFlags flags = TrainFlagsFromCommandLine();
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
  const absl::StatusOr<std::vector<std::string>> args = muppet::ParseMuppetCommandLine(
      argc, argv,
      {.program = "muppet-train",
       .usage = "trains a CNN on one machine.\n  muppet-train --model=lenet5 --epochs=2 "
                "[--dataset=fashion-mnist] [--report=run.json]"});
  if (!args.ok()) return muppet::Fail(std::string(args.status().message()));
  return muppet::Run();
}
