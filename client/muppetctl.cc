// muppetctl: the command-line client of muppetd.
//
//   muppetctl [--server=127.0.0.1:7070] [--output=table|json] <command> [arguments]
//
//   submit  --file=job.yaml | --model=lenet5 [--epochs=...] [the training flags of
//           worker/train/train_flags.cc, as muppet-train] [--watch]
//   get     JOB_ID
//   list    [--state=running,queued] [--owner=NAME] [--limit=N]
//   cancel  JOB_ID [--reason=TEXT]
//   watch   JOB_ID
//   workers
//
// Exit codes: 0 success; 1 the coordinator answered with an error or could not be reached;
// 2 bad usage or a bad job file; 3 a watched job ended without succeeding.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/cli.h"
#include "base/tls_flags.h"
#include "base/train_config.h"
#include "base/train_flags.h"
#include "client/client.h"
#include "client/job_file.h"
#include "client/render.h"
#include "google/protobuf/util/json_util.h"
#include "proto/spec_validation.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7070", "muppetd's address, host:port.");
ABSL_FLAG(std::string, output, "table", "Output format: table | json.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call.");
ABSL_FLAG(std::string, token_file, "", "File holding the coordinator's bearer token.");
// submit
ABSL_FLAG(std::string, file, "", "submit: a YAML or JSON job file (a JobSpec).");
ABSL_FLAG(std::string, name, "", "submit: job name.");
ABSL_FLAG(int32_t, priority, 0, "submit: priority in [-1000, 1000]; higher runs first.");
ABSL_FLAG(std::string, request_id, "", "submit: idempotency key; a retry returns the same job.");
ABSL_FLAG(bool, watch, false, "submit: watch the job until it ends.");
ABSL_FLAG(int64_t, workers, 1, "submit: workers (hosts) the job spans, data parallel.");
ABSL_FLAG(int64_t, devices_per_worker, 1,
          "submit: ranks on each worker (CPU processes or GPUs); --batch-size is the global "
          "batch of all workers x devices-per-worker ranks.");
ABSL_FLAG(int32_t, max_restarts, 3,
          "submit: how many times the job is placed again after a lost worker or a failed rank, "
          "resuming from its newest checkpoint; in [0, 100].");
// list, cancel
ABSL_FLAG(std::string, state, "", "list: only these states, e.g. running,queued.");
ABSL_FLAG(std::string, owner, "",
          "list: only the jobs of this owner (a user's token lists its own only).");
ABSL_FLAG(int32_t, limit, 0, "list: at most this many jobs (0: all).");
ABSL_FLAG(std::string, reason, "", "cancel: why, recorded in the job's events.");

namespace muppet::client {
namespace {

constexpr int kServerError = 1;
constexpr int kUsage = kUsageExitCode;
constexpr int kJobFailed = 3;

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "muppetctl: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

int ServerError(const absl::Status& s) {
  return Fail(kServerError, absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message()));
}

bool Json() { return absl::GetFlag(FLAGS_output) == "json"; }

void PrintJson(const google::protobuf::Message& m) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &text, options);
  std::printf("%s", text.c_str());
}

// Whether a flag was given a value other than its default (this abseil keeps "was it on the
// command line" private).
bool Specified(absl::string_view flag) {
  const absl::CommandLineFlag* f = absl::FindCommandLineFlag(flag);
  return f != nullptr && f->CurrentValue() != f->DefaultValue();
}

absl::StatusOr<v1::JobSpec> SpecFromCommandLine() {
  const std::string file = absl::GetFlag(FLAGS_file);
  v1::JobSpec spec;
  if (!file.empty()) {
    for (const char* flag : {"model", "dataset", "epochs", "batch_size", "lr", "policy", "workers",
                             "devices_per_worker", "device"}) {
      if (Specified(flag)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--file and --", flag, " cannot be combined: put the field in the job file"));
      }
    }
    absl::StatusOr<v1::JobSpec> parsed = ReadJobFile(file);
    if (!parsed.ok()) return parsed.status();
    spec = *std::move(parsed);
  } else {
    TrainFlags flags = TrainFlagsFromCommandLine();
    flags.workers = absl::GetFlag(FLAGS_workers);
    flags.devices_per_worker = absl::GetFlag(FLAGS_devices_per_worker);
    if (flags.model.empty()) {
      return absl::InvalidArgumentError("submit: --model or --file is required");
    }
    absl::StatusOr<v1::JobSpec> built = SpecFromFlags(flags);
    if (!built.ok()) return built.status();
    spec = *std::move(built);
  }
  if (Specified("name")) spec.set_name(absl::GetFlag(FLAGS_name));
  if (Specified("priority")) spec.set_priority(absl::GetFlag(FLAGS_priority));
  if (Specified("max_restarts")) {
    const int32_t restarts = absl::GetFlag(FLAGS_max_restarts);
    if (restarts < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--max-restarts: must be in [0, 100], got ", restarts));
    }
    spec.set_max_restarts(static_cast<uint32_t>(restarts));
  }
  // Validate here too, so that a bad file fails before any call, with the same messages.
  ApplyJobSpecDefaults(spec);
  if (absl::Status s = ValidateJobSpec(spec); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.empty() ? "" : absl::StrCat(file, ": "), s.message()));
  }
  return spec;
}

int Watch(Client& client, const std::string& job_id) {
  absl::StatusOr<v1::Job> job = client.GetJob(job_id);
  if (!job.ok()) return ServerError(job.status());
  const bool json = Json();
  WatchDisplay display(stdout, isatty(STDOUT_FILENO) != 0, *job);
  if (!json)
    std::printf("watching %s (%s on %s, %u epochs)\n", job_id.c_str(),
                job->spec().model().name().c_str(), job->spec().dataset().name().c_str(),
                job->spec().epochs());
  const absl::Status s = client.WatchJob(job_id, 0, [&](const v1::JobEvent& e) {
    if (json) {
      std::string text;
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;  // As get and list print.
      (void)google::protobuf::util::MessageToJsonString(e, &text, options);
      std::printf("%s\n", text.c_str());
      std::fflush(stdout);
    } else {
      display.OnEvent(e);
    }
    return true;
  });
  if (!s.ok()) return ServerError(s);
  job = client.GetJob(job_id);
  if (!job.ok()) return ServerError(job.status());
  if (!json) std::printf("\n%s", JobSummary(*job).c_str());
  return job->state() == v1::JOB_STATE_SUCCEEDED ? 0 : kJobFailed;
}

int Submit(Client& client) {
  absl::StatusOr<v1::JobSpec> spec = SpecFromCommandLine();
  if (!spec.ok()) return Fail(kUsage, spec.status().message());
  absl::StatusOr<v1::Job> job = client.SubmitJob(*spec, absl::GetFlag(FLAGS_request_id));
  if (!job.ok()) return ServerError(job.status());
  if (Json()) {
    PrintJson(*job);
    std::printf("\n");
  } else {
    std::printf("submitted %s (%s)\n", job->id().c_str(), StateName(job->state()).c_str());
  }
  return absl::GetFlag(FLAGS_watch) ? Watch(client, job->id()) : 0;
}

absl::StatusOr<std::vector<v1::JobState>> ParseStates(const std::string& text) {
  std::vector<v1::JobState> states;
  for (absl::string_view name : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    v1::JobState state;
    if (!v1::JobState_Parse(absl::StrCat("JOB_STATE_", absl::AsciiStrToUpper(name)), &state) ||
        state == v1::JOB_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          absl::StrCat("--state: unknown state \"", name,
                       "\"; one of queued, scheduled, running, succeeded, failed, cancelled"));
    }
    states.push_back(state);
  }
  return states;
}

int Run(const std::vector<std::string>& args) {
  if (args.empty()) {
    return Fail(kUsage, "a command is required: submit, get, list, cancel, watch, workers");
  }
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "table" && output != "json") {
    return Fail(kUsage, absl::StrCat("--output: must be table or json, got \"", output, "\""));
  }
  ClientOptions options{.server = absl::GetFlag(FLAGS_server),
                        .timeout = absl::GetFlag(FLAGS_timeout)};
  if (options.timeout <= absl::ZeroDuration()) {
    return Fail(kUsage, absl::StrCat("--timeout: must be positive, got ",
                                     absl::FormatDuration(options.timeout)));
  }
  absl::StatusOr<std::string> token = ReadTokenFile(absl::GetFlag(FLAGS_token_file));
  if (!token.ok()) return Fail(kUsage, token.status().message());
  options.token = *std::move(token);
  absl::StatusOr<ClientTls> tls = ClientTlsFromFlags();
  if (!tls.ok()) return Fail(kUsage, tls.status().message());
  options.tls = *std::move(tls);
  Client client(options);
  const std::string& command = args[0];
  const auto need_id = [&]() -> std::optional<int> {
    if (args.size() != 2) return Fail(kUsage, absl::StrCat(command, ": expects one JOB_ID"));
    return std::nullopt;
  };
  if (command == "submit") {
    if (args.size() != 1) return Fail(kUsage, "submit: takes flags only; see --help");
    return Submit(client);
  }
  if (command == "get") {
    if (auto bad = need_id()) return *bad;
    absl::StatusOr<v1::Job> job = client.GetJob(args[1]);
    if (!job.ok()) return ServerError(job.status());
    if (Json()) {
      PrintJson(*job);
      std::printf("\n");
    } else {
      std::printf("%s", JobDetails(*job).c_str());
    }
    return 0;
  }
  if (command == "list") {
    absl::StatusOr<std::vector<v1::JobState>> states = ParseStates(absl::GetFlag(FLAGS_state));
    if (!states.ok()) return Fail(kUsage, states.status().message());
    const int32_t limit = absl::GetFlag(FLAGS_limit);
    if (limit < 0) return Fail(kUsage, "--limit: must be at least 0");
    absl::StatusOr<std::vector<v1::Job>> jobs =
        client.ListJobs(*states, limit, absl::GetFlag(FLAGS_owner));
    if (!jobs.ok()) return ServerError(jobs.status());
    if (Json()) {
      v1::ListJobsResponse all;
      for (v1::Job& j : *jobs) *all.add_jobs() = std::move(j);
      PrintJson(all);
      std::printf("\n");
    } else {
      std::printf("%s", JobsTable(*jobs, absl::Now()).c_str());
    }
    return 0;
  }
  if (command == "cancel") {
    if (auto bad = need_id()) return *bad;
    absl::StatusOr<v1::Job> job = client.CancelJob(args[1], absl::GetFlag(FLAGS_reason));
    if (!job.ok()) return ServerError(job.status());
    if (Json()) {
      PrintJson(*job);
      std::printf("\n");
    } else {
      std::printf("cancelled %s\n", job->id().c_str());
    }
    return 0;
  }
  if (command == "watch") {
    if (auto bad = need_id()) return *bad;
    return Watch(client, args[1]);
  }
  if (command == "workers") {
    absl::StatusOr<std::vector<v1::WorkerInfo>> workers = client.ListWorkers();
    if (!workers.ok()) return ServerError(workers.status());
    if (Json()) {
      v1::ListWorkersResponse all;
      for (v1::WorkerInfo& w : *workers) *all.add_workers() = std::move(w);
      PrintJson(all);
      std::printf("\n");
    } else {
      std::printf("%s", WorkersTable(*workers).c_str());
    }
    return 0;
  }
  return Fail(kUsage, absl::StrCat("unknown command \"", command,
                                   "\"; one of submit, get, list, cancel, watch, workers"));
}

}  // namespace
}  // namespace muppet::client

int main(int argc, char** argv) {
  const absl::StatusOr<std::vector<std::string>> args = muppet::ParseMuppetCommandLine(
      argc, argv,
      {.program = "muppetctl",
       .usage = "the muppet command-line client.\n"
                "  muppetctl [--server=127.0.0.1:7070] [--output=table|json] COMMAND\n"
                "  commands: submit (--file=JOB.yaml | --model=...), get JOB, list, cancel JOB, "
                "watch JOB, workers",
       .positional = true});
  if (!args.ok()) return muppet::client::Fail(muppet::client::kUsage, args.status().message());
  return muppet::client::Run(*args);
}
