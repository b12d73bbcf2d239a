// muppet-rank: one rank of a data-parallel job, started by muppet-worker (one process per local
// rank, as torchrun does) and not meant to be run by hand. It meets the job's other ranks through
// the coordinator's rendezvous store, trains its share over Gloo, and writes how it ended to
// --result as a ReportResultRequest, which the worker reports. Rank 0 also reports every policy
// epoch to the coordinator and shares its decision with the others.
//
// SIGTERM or SIGINT cancels the training (every rank stops after the same step). Exit status:
// 0 succeeded, 1 failed, 2 bad flags or assignment, 3 cancelled, 4 failed because a collective
// did (another rank was lost or stuck first).
#include <omp.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/cli.h"
#include "base/log.h"
#include "base/rpc.h"
#include "base/tls_flags.h"
#include "worker/agent/attempt_start.h"
#include "worker/agent/job_log.h"
#include "worker/agent/local_ranks.h"
#include "worker/agent/remote_controller.h"
#include "worker/comm/coordinator_store.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/train/run.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7070", "muppetd's gRPC address, host:port.");
ABSL_FLAG(std::string, token_file, "", "File holding the coordinator's bearer token.");
ABSL_FLAG(absl::Duration, call_timeout, absl::Seconds(10), "Deadline of each call.");
ABSL_FLAG(std::string, worker_id, "", "The id of the worker that started this rank.");
ABSL_FLAG(std::string, assignment, "", "File holding the job's Assignment (binary protobuf).");
ABSL_FLAG(int32_t, rank, -1, "This process's global rank.");
ABSL_FLAG(int32_t, threads, 1, "CPU threads of this rank.");
ABSL_FLAG(std::string, comm_address, "127.0.0.1", "Address the other ranks reach this one at.");
ABSL_FLAG(absl::Duration, comm_timeout, absl::Seconds(60),
          "How long rendezvous and every collective may wait for the other ranks.");
ABSL_FLAG(std::string, result, "", "File to write the ReportResultRequest to.");
ABSL_FLAG(std::string, checkpoint_dir, "",
          "Rank 0 writes the job's checkpoints here (none when empty).");
ABSL_FLAG(int32_t, checkpoint_keep, 2, "Checkpoints kept in --checkpoint-dir, the newest.");

namespace muppet {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "muppet-rank: %s\n", message.c_str());
  return kRankUsage;
}

absl::StatusOr<v1::Assignment> ReadAssignment(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  v1::Assignment assignment;
  if (!in || !assignment.ParseFromIstream(&in)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--assignment: cannot read an Assignment from \"", path, "\""));
  }
  return assignment;
}

absl::Status WriteResult(const v1::ReportResultRequest& result, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !result.SerializeToOstream(&out)) {
      return absl::InternalError(absl::StrCat("cannot write the result to \"", tmp, "\""));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename \"", tmp, "\" to \"", path, "\""));
  }
  return absl::OkStatus();
}

// A collective's error means another rank went first (lost, stuck, or failed).
bool CausedByAPeer(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsAborted(s);
}

// Trains this rank; the status of the run, its result on success.
absl::StatusOr<RunResult> Train(const v1::Assignment& a, int rank, const RetryPolicy& retry,
                                const std::atomic<bool>& cancel, Logger& log) {
  const std::shared_ptr<grpc::Channel>& channel = retry.channel;
  comm::CoordinatorStore coordinator(channel, retry, absl::GetFlag(FLAGS_worker_id));
  comm::PrefixStore store(std::string(absl::StripSuffix(a.rendezvous_prefix(), "/")), &coordinator);
  const absl::Duration timeout = absl::GetFlag(FLAGS_comm_timeout);
  absl::StatusOr<std::unique_ptr<comm::Communicator>> comm =
      comm::ConnectGloo({.rank = rank,
                         .size = static_cast<int>(a.world_size()),
                         .hostname = absl::GetFlag(FLAGS_comm_address),
                         .connect_timeout = timeout},
                        store);
  if (!comm.ok()) return comm.status();
  log.Info("rank_connected", {{"job", a.job_id()},
                              {"rank", absl::StrCat(rank)},
                              {"world_size", absl::StrCat(a.world_size())}});
  std::unique_ptr<v1::WorkerService::Stub> stub = v1::WorkerService::NewStub(channel);
  const int start_bits = static_cast<int>(a.start_precision_bits());
  // Every rank holds one; only rank 0's is consulted.
  RemotePrecisionController controller(*stub, retry, absl::GetFlag(FLAGS_worker_id), a.job_id(),
                                       a.attempt(), a.spec().precision(), start_bits, cancel);
  JobLog observer(&log, a.job_id(), controller, rank);
  return TrainAttempt(a, controller, &observer,
                      {.cancel = &cancel,
                       .comm = comm->get(),
                       .comm_timeout = timeout,
                       .checkpoint_dir = absl::GetFlag(FLAGS_checkpoint_dir),
                       .checkpoint_keep = absl::GetFlag(FLAGS_checkpoint_keep)},
                      log);
}

int Run() {
  absl::StatusOr<v1::Assignment> assignment = ReadAssignment(absl::GetFlag(FLAGS_assignment));
  if (!assignment.ok()) return Fail(std::string(assignment.status().message()));
  const int rank = absl::GetFlag(FLAGS_rank);
  if (rank < 0 || rank >= static_cast<int>(assignment->world_size())) {
    return Fail(absl::StrCat("--rank: must be in [0, ", assignment->world_size(), "), got ", rank));
  }
  const std::string result_path = absl::GetFlag(FLAGS_result);
  if (result_path.empty()) return Fail("--result is required");
  RetryPolicy retry;
  absl::StatusOr<std::string> token = ReadTokenFile(absl::GetFlag(FLAGS_token_file));
  if (!token.ok()) return Fail(std::string(token.status().message()));
  retry.token = *std::move(token);
  absl::StatusOr<ClientTls> tls = ClientTlsFromFlags();
  if (!tls.ok()) return Fail(std::string(tls.status().message()));
  retry.tls = *std::move(tls);
  retry.call_timeout = absl::GetFlag(FLAGS_call_timeout);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // Before any thread starts (gRPC's too).
  retry.channel = CoordinatorChannel(absl::GetFlag(FLAGS_server), retry.tls);
  std::atomic<bool> cancel{false};
  std::thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    cancel = true;
  }).detach();

  omp_set_num_threads(absl::GetFlag(FLAGS_threads));
  Logger log(stderr);
  const absl::StatusOr<RunResult> run = Train(*assignment, rank, retry, cancel, log);

  v1::ReportResultRequest result;
  result.set_worker_id(absl::GetFlag(FLAGS_worker_id));
  result.set_job_id(assignment->job_id());
  result.set_succeeded(run.ok());
  result.set_attempt(assignment->attempt());
  if (run.ok()) {
    *result.mutable_result() = ToJobResult(*run);
  } else {
    result.set_error(absl::StrCat("rank ", rank, ": ", run.status().message()));
    result.set_permanent(IsPermanentFailure(run.status()));
  }
  if (absl::Status s = WriteResult(result, result_path); !s.ok()) {
    log.Warn("result_not_written", {{"error", std::string(s.message())}});
    return kRankFailed;
  }
  if (run.ok()) return kRankSucceeded;
  if (absl::IsCancelled(run.status())) return kRankCancelled;
  return CausedByAPeer(run.status()) ? kRankPeerFailed : kRankFailed;
}

}  // namespace
}  // namespace muppet

int main(int argc, char** argv) {
  const absl::StatusOr<std::vector<std::string>> args = muppet::ParseMuppetCommandLine(
      argc, argv,
      {.program = "muppet-rank",
       .usage = "one rank of a data-parallel job; muppet-worker starts it.\n  muppet-rank "
                "--assignment=FILE --rank=R --result=FILE [--server=HOST:PORT]"});
  if (!args.ok()) return muppet::Fail(std::string(args.status().message()));
  return muppet::Run();
}
