#include "worker/agent/local_ranks.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace muppet {

std::string RankExit::Describe() const {
  if (signaled) {
    return absl::StrCat("rank ", rank, " (pid ", pid, ") was killed by signal ", code, " (",
                        strsignal(code), ")");
  }
  return absl::StrCat("rank ", rank, " (pid ", pid, ") exited with status ", code);
}

LocalRanks::~LocalRanks() {
  Kill();
  for (Process& p : processes_) {
    if (p.running) waitpid(p.pid, nullptr, 0);
  }
}

absl::Status LocalRanks::Start(const std::string& binary, int first_rank,
                               const std::vector<std::vector<std::string>>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<std::string> strings = {binary};
    strings.insert(strings.end(), args[i].begin(), args[i].end());
    std::vector<char*> argv;
    for (std::string& s : strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    sigset_t none;
    sigemptyset(&none);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      return absl::InternalError(
          absl::StrCat("starting rank ", first_rank + i, ": fork failed: ", strerror(errno)));
    }
    if (pid == 0) {
      // Die with the agent's thread that started us; take signals (the agent blocks them).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    processes_.push_back({.rank = first_rank + static_cast<int>(i), .pid = pid});
  }
  return absl::OkStatus();
}

std::vector<RankExit> LocalRanks::Reap() {
  std::vector<RankExit> exits;
  for (Process& p : processes_) {
    if (!p.running) continue;
    int status = 0;
    if (waitpid(p.pid, &status, WNOHANG) != p.pid) continue;
    p.running = false;
    exits.push_back({.rank = p.rank,
                     .pid = p.pid,
                     .signaled = WIFSIGNALED(status),
                     .code = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status)});
  }
  return exits;
}

std::string LocalRanks::Pids() const {
  std::string pids;
  for (const Process& p : processes_) absl::StrAppend(&pids, pids.empty() ? "" : ",", p.pid);
  return pids;
}

bool LocalRanks::running() const {
  for (const Process& p : processes_) {
    if (p.running) return true;
  }
  return false;
}

void LocalRanks::Terminate() {
  for (Process& p : processes_) {
    if (p.running && !p.terminated) {
      kill(p.pid, SIGTERM);
      p.terminated = true;
    }
  }
}

void LocalRanks::Kill() {
  for (Process& p : processes_) {
    if (p.running) kill(p.pid, SIGKILL);
  }
}

}  // namespace muppet
