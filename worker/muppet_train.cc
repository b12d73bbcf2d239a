// muppet-train: trains a model on one machine and reports every epoch.
//
//   muppet-train --model=lenet5 --epochs=2 --report=run.json
//   muppet-train --model=resnet20 --nproc=2 --threads=2   # data parallel: 2 ranks x 1 thread
//
// Flags take dashed names (--batch-size); `muppet-train --help` lists them.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "base/cli.h"
#include "base/cpu.h"
#include "base/train_config.h"
#include "base/train_flags.h"
#include "kernels/cpu/platform.h"
#include "scheduler/policy_text.h"
#include "scheduler/precision_policy.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/store.h"
#include "worker/train/local_policy.h"
#include "worker/train/memory.h"
#include "worker/train/progress.h"
#include "worker/train/report.h"
#include "worker/train/run.h"

ABSL_FLAG(int64_t, threads, 0,
          "CPU threads in all (0: every core this process may use), split evenly between the "
          "ranks.");
ABSL_FLAG(int64_t, nproc, 1,
          "Data-parallel ranks: threads of this process joined by Gloo over 127.0.0.1 through an "
          "in-process store, each training its share of every --batch-size global batch.");
ABSL_FLAG(absl::Duration, comm_timeout, absl::Seconds(60),
          "With --nproc > 1: how long a collective may wait for the other ranks.");
ABSL_FLAG(std::string, report, "", "Write a JSON report of the run to this file.");
ABSL_FLAG(std::string, checkpoint_dir, "",
          "Write checkpoints into this directory: after every precision switch and every "
          "--checkpoint-interval-epochs epochs (none when empty).");
ABSL_FLAG(int64_t, checkpoint_keep, 2, "Checkpoints kept in --checkpoint-dir, the newest.");
ABSL_FLAG(std::string, resume, "",
          "Continue the run of this checkpoint, or of the newest good one in this directory, "
          "with the same flags (--epochs may grow).");

namespace muppet {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "muppet-train: %s\n", message.c_str());
  return kUsageExitCode;
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
        "%d ranks x %d threads, policy %s starting at %s\n",
        spec_.model().name().c_str(), spec_.dataset().name().c_str(),
        static_cast<long long>(start.train_images), static_cast<long long>(start.test_images),
        static_cast<long long>(start.parameters), spec_.batch_size(),
        spec_.resources().devices_per_worker(), omp_get_max_threads(), policy_text_.c_str(),
        PrecisionLabel(start_bits_).c_str());
    std::printf("muppet-train: memory about %s of the %s a rank may use\n",
                FormatBytes(start.memory_estimate_bytes).c_str(),
                FormatBytes(start.memory_limit_bytes).c_str());
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
  void OnCheckpoint(const CheckpointInfo& info) override {
    std::printf("muppet-train: checkpoint %s (%.1f MB in %.2f s)\n", info.path.c_str(),
                static_cast<double>(info.bytes) / 1e6, info.seconds);
  }
  void OnLadderProbe(const LadderProbe& probe) override {
    std::string levels;
    for (const LevelSpeed& l : probe.levels) {
      absl::StrAppendFormat(&levels, " %s %d (%.2fx)", l.kept ? "kept" : "dropped", l.bits,
                            l.speedup_vs_fp32);
    }
    const int first = probe.ladder.empty() ? kFp32Bits : probe.ladder.front();
    std::printf("muppet-train: ladder measured against FP32 (%.1f ms a step):%s; starting at %s\n",
                probe.fp32_step_seconds * 1e3, levels.c_str(), PrecisionLabel(first).c_str());
    display_.SetPrecision(first);
  }

 private:
  const v1::JobSpec& spec_;
  const std::string policy_text_;
  const int start_bits_;
  ProgressDisplay display_;
};

struct RankResult {
  absl::StatusOr<RunResult> run = absl::UnknownError("rank did not run");
  std::string policy_text;
};

// Trains rank `rank` of `spec.resources.devices_per_worker` on `threads` OpenMP threads, with a
// policy of its own (only rank 0's decides), showing progress on the console if `with_console`.
RankResult RunRank(const v1::JobSpec& spec, int rank, int threads, comm::Store& store,
                   RunOptions options, bool with_console) {
  RankResult result;
  omp_set_num_threads(threads);
  absl::StatusOr<std::unique_ptr<scheduler::PrecisionPolicy>> policy =
      scheduler::MakePolicy(spec.precision());
  if (!policy.ok()) {
    result.run = policy.status();
    return result;
  }
  LocalPolicyController controller(*std::move(policy), spec.precision());
  result.policy_text = scheduler::PolicyText(spec.precision());
  std::optional<Console> console;
  if (with_console) {
    console.emplace(spec, result.policy_text,
                    options.resume != nullptr
                        ? static_cast<int>(options.resume->checkpoint.state.precision_bits())
                        : controller.precision_bits());
  }
  const int ranks = static_cast<int>(spec.resources().devices_per_worker());
  std::unique_ptr<comm::Communicator> comm;
  if (ranks > 1) {
    absl::StatusOr<std::unique_ptr<comm::Communicator>> connected = comm::ConnectGloo(
        {.rank = rank, .size = ranks, .connect_timeout = options.comm_timeout}, store);
    if (!connected.ok()) {
      result.run = connected.status();
      return result;
    }
    comm = *std::move(connected);
  }
  options.comm = comm.get();
  result.run = RunTraining(spec, controller.precision_bits(), controller,
                           console ? &*console : nullptr, options);
  return result;
}

int Run() {
  TrainFlags flags = TrainFlagsFromCommandLine();
  if (flags.model.empty()) return Fail("--model is required; see --help");
  const int64_t threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0 || threads > 1024) {
    return Fail(absl::StrCat("--threads: must be in [0, 1024], got ", threads));
  }
  const int64_t nproc = absl::GetFlag(FLAGS_nproc);
  if (nproc < 1 || nproc > 64)
    return Fail(absl::StrCat("--nproc: must be in [1, 64], got ", nproc));
  flags.devices_per_worker = nproc;
  absl::StatusOr<v1::JobSpec> spec = SpecFromFlags(flags);
  if (!spec.ok()) {
    return Fail(
        absl::StrReplaceAll(spec.status().message(), {{"--devices-per-worker", "--nproc"}}));
  }
  const int total_threads = threads == 0 ? UsableCores() : static_cast<int>(threads);
  const int per_rank = std::max(1, total_threads / static_cast<int>(nproc));
  const absl::Duration timeout = absl::GetFlag(FLAGS_comm_timeout);
  if (timeout <= absl::ZeroDuration()) {
    return Fail(
        absl::StrCat("--comm-timeout: must be positive, got ", absl::FormatDuration(timeout)));
  }

  const int64_t keep = absl::GetFlag(FLAGS_checkpoint_keep);
  if (keep < 1 || keep > 1000) {
    return Fail(absl::StrCat("--checkpoint-keep: must be in [1, 1000], got ", keep));
  }
  RunOptions options{.comm_timeout = timeout,
                     .checkpoint_dir = absl::GetFlag(FLAGS_checkpoint_dir),
                     .checkpoint_keep = static_cast<int>(keep)};
  if (spec->checkpoint_interval_epochs() > 0 && options.checkpoint_dir.empty()) {
    return Fail("--checkpoint-interval-epochs: needs --checkpoint-dir");
  }
  const std::string report_path = absl::GetFlag(FLAGS_report);
  if (!report_path.empty()) {
    if (absl::Status s = CheckReportPath(report_path); !s.ok()) {
      return Fail(std::string(s.message()));
    }
  }
  std::optional<LoadedCheckpoint> resume;
  if (const std::string path = absl::GetFlag(FLAGS_resume); !path.empty()) {
    absl::StatusOr<LoadedCheckpoint> loaded = LoadCheckpoint(path);
    if (!loaded.ok()) return Fail(absl::StrCat("--resume: ", loaded.status().message()));
    for (const absl::Status& skipped : loaded->skipped) {
      std::printf("muppet-train: skipped %s\n", std::string(skipped.message()).c_str());
    }
    std::printf("muppet-train: resuming from %s at epoch %u\n", loaded->path.c_str(),
                loaded->checkpoint.state.next_epoch());
    resume = *std::move(loaded);
    options.resume = &*resume;
  }

  comm::InProcessStore store;
  std::vector<RankResult> ranks(nproc);
  std::vector<std::thread> others;
  for (int r = 1; r < nproc; ++r) {
    others.emplace_back([&, r] { ranks[r] = RunRank(*spec, r, per_rank, store, options, false); });
  }
  ranks[0] = RunRank(*spec, 0, per_rank, store, options, true);
  for (std::thread& t : others) t.join();
  for (int r = 0; r < nproc; ++r) {
    if (!ranks[r].run.ok()) {
      return Fail(absl::StrCat(nproc > 1 ? absl::StrCat("rank ", r, ": ") : "",
                               ranks[r].run.status().message()));
    }
  }
  const RunResult& run = *ranks[0].run;
  std::printf("final test accuracy %.4f, wall time %.1f s\n", run.final_test_accuracy,
              run.wall_seconds);

  const RunReport report{.model = spec->model().name(),
                         .dataset = spec->dataset().name(),
                         .policy = ranks[0].policy_text,
                         .batch_size = spec->batch_size(),
                         .threads = per_rank,
                         .ranks = static_cast<int>(nproc),
                         .seed = spec->seed(),
                         .epochs = run.epochs,
                         .ladder_probe = run.ladder_probe,
                         .resumed_from = resume ? resume->path : "",
                         .final_test_accuracy = run.final_test_accuracy,
                         .wall_seconds = run.wall_seconds};
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
