// The agent's half of data-parallel jobs: a process per local rank (muppet-rank), watched until
// all have ended, and one report of how the job ended on this worker.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "worker/agent/agent.h"
#include "worker/agent/local_ranks.h"

namespace muppet {
namespace {

// A private directory for one job's files, removed with everything in it.
class JobDirectory {
 public:
  JobDirectory() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/muppet-job-XXXXXX");
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~JobDirectory() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes `bytes` to a new file that only this user may read (the token is among them).
absl::Status WritePrivateFile(const std::string& path, const std::string& bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  bool ok = fd >= 0;
  for (size_t done = 0; ok && done < bytes.size();) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  if (fd >= 0 && close(fd) != 0) ok = false;
  if (!ok) return absl::InternalError(absl::StrCat("cannot write \"", path, "\""));
  return absl::OkStatus();
}

// Whether muppet-rank ended by itself, with one of its own statuses.
bool EndedNormally(const RankExit& e) {
  return !e.signaled && (e.code == kRankSucceeded || e.code == kRankFailed ||
                         e.code == kRankCancelled || e.code == kRankPeerFailed);
}

}  // namespace

v1::ReportResultRequest Agent::TrainInRankProcesses(JobRun* run, const v1::Assignment& a,
                                                    const std::string& worker_id) {
  if (options_.rank_binary.empty()) {
    return Failure("this worker cannot run data-parallel jobs: it has no rank program");
  }
  const JobDirectory dir;
  const std::string assignment_path = dir.path() + "/assignment.pb";
  const std::string token_path = dir.path() + "/token";
  if (absl::Status s = dir.path().empty()
                           ? absl::InternalError("cannot create a job directory")
                           : WritePrivateFile(assignment_path, a.SerializeAsString());
      !s.ok()) {
    return Failure(std::string(s.message()));
  }
  if (!options_.retry.token.empty()) {
    if (absl::Status s = WritePrivateFile(token_path, options_.retry.token); !s.ok()) {
      return Failure(std::string(s.message()));
    }
  }
  const uint32_t threads = a.spec().resources().cpu_threads_per_rank();
  std::vector<std::vector<std::string>> args;
  for (uint32_t i = 0; i < a.local_ranks(); ++i) {
    const uint32_t rank = a.first_rank() + i;
    std::vector<std::string> flags = {
        absl::StrCat("--server=", options_.server),
        absl::StrCat("--call-timeout=", absl::FormatDuration(options_.retry.call_timeout)),
        absl::StrCat("--worker-id=", worker_id),
        absl::StrCat("--assignment=", assignment_path),
        absl::StrCat("--rank=", rank),
        absl::StrCat("--threads=", threads > 0 ? static_cast<int>(threads) : threads_per_slot_),
        absl::StrCat("--comm-address=", options_.comm_address),
        absl::StrCat("--comm-timeout=", absl::FormatDuration(options_.comm_timeout)),
        absl::StrCat("--result=", dir.path(), "/rank-", rank, ".pb")};
    if (!options_.retry.token.empty()) flags.push_back(absl::StrCat("--token-file=", token_path));
    for (std::string& flag : ClientTlsFlags(options_.retry.tls)) flags.push_back(std::move(flag));
    if (!options_.checkpoint_dir.empty()) {
      flags.push_back(absl::StrCat("--checkpoint-dir=", CheckpointDir(a)));
      flags.push_back(absl::StrCat("--checkpoint-keep=", options_.checkpoint_keep));
    }
    args.push_back(std::move(flags));
  }

  LocalRanks ranks;
  if (absl::Status s = ranks.Start(options_.rank_binary, static_cast<int>(a.first_rank()), args);
      !s.ok()) {
    return Failure(std::string(s.message()));
  }
  log_->Info("ranks_started", {{"job", run->job_id},
                               {"first_rank", absl::StrCat(a.first_rank())},
                               {"local_ranks", absl::StrCat(a.local_ranks())},
                               {"world_size", absl::StrCat(a.world_size())},
                               {"pids", ranks.Pids()}});
  std::optional<RankExit> lost;  // The first rank that did not end by itself.
  std::map<int, RankExit> exits;
  absl::Time kill_at = absl::InfiniteFuture();
  while (ranks.running()) {
    for (const RankExit& e : ranks.Reap()) {
      exits[e.rank] = e;
      log_->Info("rank_exited", {{"job", run->job_id}, {"how", e.Describe()}});
      if (!EndedNormally(e) && !lost) {
        lost = e;
        ranks.Terminate();
        kill_at = absl::Now() + options_.stop_grace;
      }
    }
    if (run->cancel && kill_at == absl::InfiniteFuture()) {
      ranks.Terminate();
      kill_at = absl::Now() + options_.stop_grace;
    }
    if (absl::Now() > kill_at) ranks.Kill();
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (lost) {
    return Failure(lost->Describe());
  }

  // Every rank wrote how it ended: report a success, else the first failure of the rank's own,
  // else a cancellation, else a failure caused by another worker's rank.
  std::optional<v1::ReportResultRequest> success, own, peer;
  bool cancelled = false;
  for (const auto& [rank, e] : exits) {
    v1::ReportResultRequest r;
    std::ifstream in(absl::StrCat(dir.path(), "/rank-", rank, ".pb"), std::ios::binary);
    if (!in || !r.ParseFromIstream(&in)) {
      return Failure(absl::StrCat(e.Describe(), " without writing its result"));
    }
    if (e.code == kRankSucceeded && !success) success = r;
    if (e.code == kRankFailed && !own) own = r;
    if (e.code == kRankPeerFailed && !peer) peer = r;
    if (e.code == kRankCancelled) cancelled = true;
  }
  if (own) return *own;
  if (cancelled) {
    return Failure(CancelledError(run, "training cancelled"));
  }
  if (peer) {
    // Let the worker of the rank that went first report the cause.
    if (!stop_) absl::SleepFor(options_.peer_failure_grace);
    return *peer;
  }
  return *success;
}

}  // namespace muppet
