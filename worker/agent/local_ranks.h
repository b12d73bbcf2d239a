// The processes of a data-parallel job's ranks on this worker, one per local rank, as torchrun
// starts them: each runs muppet-rank, dies with the thread that started it (PR_SET_PDEATHSIG),
// and is stopped with SIGTERM (which cancels its training) and, past a grace period, SIGKILL.
#ifndef MUPPET_WORKER_AGENT_LOCAL_RANKS_H_
#define MUPPET_WORKER_AGENT_LOCAL_RANKS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace muppet {

// How a rank's process ended.
struct RankExit {
  int rank = 0;
  pid_t pid = 0;
  bool signaled = false;
  int code = 0;  // Exit status, or the signal that ended it.

  // "rank 1 (pid 4242) was killed by signal 9 (Killed)", "rank 1 (pid 4242) exited with status 2".
  std::string Describe() const;
};

// Exit statuses of muppet-rank.
inline constexpr int kRankSucceeded = 0;
inline constexpr int kRankFailed = 1;  // Its own failure (the result file says which).
inline constexpr int kRankUsage = 2;   // Bad flags or assignment file.
inline constexpr int kRankCancelled = 3;
inline constexpr int kRankPeerFailed = 4;  // A collective failed: another rank was lost first.

class LocalRanks {
 public:
  // Stops (SIGKILL) and reaps whatever still runs.
  ~LocalRanks();

  // Starts `binary` with `args[i]` for global rank `first_rank + i`, with every signal unblocked.
  // Errors: INTERNAL when a process cannot be started (those already started keep running).
  absl::Status Start(const std::string& binary, int first_rank,
                     const std::vector<std::vector<std::string>>& args);

  // Reaps the processes that ended since the last call, without waiting.
  std::vector<RankExit> Reap();

  // "pid,pid,...", in rank order.
  std::string Pids() const;

  // Whether any process still runs.
  bool running() const;

  // Sends SIGTERM to every running process (once each).
  void Terminate();
  // Sends SIGKILL to every running process.
  void Kill();

 private:
  struct Process {
    int rank = 0;
    pid_t pid = 0;
    bool running = true;
    bool terminated = false;
  };
  std::vector<Process> processes_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_AGENT_LOCAL_RANKS_H_
