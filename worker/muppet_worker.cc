// muppet-worker: the worker agent. Registers this machine with muppetd, takes assigned jobs
// and trains them, asking the coordinator for the precision of every policy epoch.
//
//   muppet-worker --server=127.0.0.1:7070 [--name=$(hostname)] [--slots=1]
//
// SIGTERM or SIGINT cancels the running jobs (they are reported failed) and exits 0.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/cli.h"
#include "base/log.h"
#include "base/tls_flags.h"
#include "kernels/cpu/platform.h"
#include "proto/version.h"
#include "worker/agent/agent.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7070", "muppetd's gRPC address, host:port.");
ABSL_FLAG(std::string, name, "", "Worker name (default: the host name).");
ABSL_FLAG(int32_t, slots, 1, "CPU ranks offered: jobs that may train at once, in [1, 64].");
ABSL_FLAG(int32_t, threads, 0, "CPU threads in all (0: every usable core), split among slots.");
ABSL_FLAG(std::string, labels, "", "Labels, key=value,key=value.");
ABSL_FLAG(std::string, token_file, "", "File holding the coordinator's bearer token.");
ABSL_FLAG(absl::Duration, call_timeout, absl::Seconds(10), "Deadline of each call.");
ABSL_FLAG(absl::Duration, max_backoff, absl::Seconds(1),
          "Longest wait between retries while the coordinator is unreachable.");
ABSL_FLAG(std::string, rank_binary, "",
          "Program each rank of a data-parallel job runs (default: muppet-rank beside this one).");
ABSL_FLAG(std::string, comm_address, "127.0.0.1",
          "Address this worker's ranks listen on for their peers; set it to one the other "
          "workers reach when a job spans machines.");
ABSL_FLAG(absl::Duration, comm_timeout, absl::Seconds(60),
          "How long a rank waits for its peers: a lost rank fails the job within it.");
ABSL_FLAG(std::string, checkpoint_dir, "",
          "Rank 0 of each job writes its checkpoints into DIR/<job id>/ (none when empty); a "
          "restarted job resumes from them, so workers on several machines need a volume they "
          "share, mounted at the same path.");
ABSL_FLAG(int32_t, checkpoint_keep, 2, "Checkpoints kept per job, the newest; in [1, 1000].");

namespace muppet {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "muppet-worker: %s\n", message.c_str());
  return kUsageExitCode;
}

// The checkpoint flags, with the directory made absolute (the coordinator records the paths) and
// created, so that a directory this worker cannot write fails at start.
absl::Status SetCheckpointDir(AgentOptions& options) {
  options.checkpoint_keep = absl::GetFlag(FLAGS_checkpoint_keep);
  if (options.checkpoint_keep < 1 || options.checkpoint_keep > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--checkpoint-keep: must be in [1, 1000], got ", options.checkpoint_keep));
  }
  const std::string dir = absl::GetFlag(FLAGS_checkpoint_dir);
  if (dir.empty()) return absl::OkStatus();
  std::error_code error;
  const std::filesystem::path path = std::filesystem::absolute(dir, error);
  if (!error) std::filesystem::create_directories(path, error);
  if (error || access(path.c_str(), W_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--checkpoint-dir: cannot create or write \"",
                                                   dir, "\"", error ? ": " : "",
                                                   error ? error.message() : ""));
  }
  options.checkpoint_dir = path.lexically_normal().string();
  return absl::OkStatus();
}

absl::StatusOr<AgentOptions> OptionsFromFlags() {
  AgentOptions options{.server = absl::GetFlag(FLAGS_server),
                       .worker_name = absl::GetFlag(FLAGS_name),
                       .slots = absl::GetFlag(FLAGS_slots),
                       .threads = absl::GetFlag(FLAGS_threads)};
  if (options.worker_name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    options.worker_name = host;
  }
  if (options.slots < 1 || options.slots > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("--slots: must be in [1, 64], got ", options.slots));
  }
  if (options.threads < 0 || options.threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads: must be in [0, 1024], got ", options.threads));
  }
  const std::string labels = absl::GetFlag(FLAGS_labels);
  for (absl::string_view pair : absl::StrSplit(labels, ',', absl::SkipEmpty())) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first.empty() || pair.find('=') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--labels: expected key=value, got \"", pair, "\""));
    }
    options.labels[kv.first] = kv.second;
  }
  absl::StatusOr<std::string> token = ReadTokenFile(absl::GetFlag(FLAGS_token_file));
  if (!token.ok()) return token.status();
  options.retry.token = *std::move(token);
  absl::StatusOr<ClientTls> tls = ClientTlsFromFlags();
  if (!tls.ok()) return tls.status();
  options.retry.tls = *std::move(tls);
  options.retry.call_timeout = absl::GetFlag(FLAGS_call_timeout);
  options.retry.max_backoff = absl::GetFlag(FLAGS_max_backoff);
  for (const auto& [flag, value] : {std::pair{"call-timeout", options.retry.call_timeout},
                                    {"max-backoff", options.retry.max_backoff}}) {
    if (value <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": must be positive, got ", absl::FormatDuration(value)));
    }
  }
  options.rank_binary = absl::GetFlag(FLAGS_rank_binary);
  if (options.rank_binary.empty()) {
    std::error_code error;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
    if (!error) options.rank_binary = (self.parent_path() / "muppet-rank").string();
  }
  options.comm_address = absl::GetFlag(FLAGS_comm_address);
  options.comm_timeout = absl::GetFlag(FLAGS_comm_timeout);
  if (options.comm_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("--comm-timeout: must be positive, got ",
                                                   absl::FormatDuration(options.comm_timeout)));
  }
  if (absl::Status s = SetCheckpointDir(options); !s.ok()) return s;
  return options;
}

int Run() {
  absl::StatusOr<AgentOptions> options = OptionsFromFlags();
  if (!options.ok()) return Fail(std::string(options.status().message()));
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // Before any thread starts.

  Logger log(stderr);
  log.Info("starting",
           {{"server", options->server}, {"name", options->worker_name}, {"version", kVersion}});
  const kernels::KernelPlatform platform = kernels::DetectKernelPlatform();
  log.Info("kernels", {{"cpu", platform.cpu_model},
                       {"isa", std::string(kernels::IsaName(platform.isa))},
                       {"amx", platform.amx ? "on" : "off"},
                       {"onednn_isa", platform.onednn_isa},
                       {"int8_route", std::string(kernels::Int8RouteName(platform.int8_route))}});
  Agent agent(*options, &log);
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    log.Info("signal", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
    agent.Stop();
  });
  const absl::Status status = agent.Run();
  // Run returns on Stop or a fatal error; in the latter case wake the signal thread ourselves.
  if (!status.ok()) kill(getpid(), SIGTERM);
  signal_thread.join();
  if (!status.ok()) return Fail(std::string(status.message()));
  log.Info("stopped");
  return 0;
}

}  // namespace
}  // namespace muppet

int main(int argc, char** argv) {
  const std::string usage =
      absl::StrCat("the muppet worker agent (version ", muppet::kVersion,
                   ").\n  muppet-worker --server=127.0.0.1:7070 [--name=NAME] [--slots=1]");
  const absl::StatusOr<std::vector<std::string>> args =
      muppet::ParseMuppetCommandLine(argc, argv, {.program = "muppet-worker", .usage = usage});
  if (!args.ok()) return muppet::Fail(std::string(args.status().message()));
  return muppet::Run();
}
