// How muppet-worker calls the coordinator: a deadline and the bearer token on every call, and
// retries with exponential backoff while the coordinator is unreachable.
#ifndef MUPPET_WORKER_AGENT_RPC_H_
#define MUPPET_WORKER_AGENT_RPC_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace muppet {

struct RetryPolicy {
  std::string token;                            // Bearer token; empty sends none.
  absl::Duration call_timeout = absl::Seconds(10);
  absl::Duration initial_backoff = absl::Milliseconds(250);
  absl::Duration max_backoff = absl::Seconds(10);
  absl::Duration give_up_after = absl::Minutes(10);  // Total time spent retrying one call.

  // A client context with the deadline and token set.
  std::unique_ptr<grpc::ClientContext> Context() const;
};

// The gRPC status as an absl::Status.
absl::Status FromGrpc(const grpc::Status& status);

// Whether a failed call may succeed if tried again (the coordinator is restarting or busy).
bool IsTransient(const absl::Status& status);

// Runs `call` until it succeeds, fails for good, `policy.give_up_after` passes, or `stop` is
// set (then CANCELLED). Waits between tries double from initial_backoff up to max_backoff.
absl::Status CallWithRetry(const RetryPolicy& policy, const std::atomic<bool>* stop,
                           const std::function<absl::Status()>& call);

// Sleeps for `d`, waking early when `stop` is set. Returns false if stopped.
bool SleepUnlessStopped(absl::Duration d, const std::atomic<bool>* stop);

}  // namespace muppet

#endif  // MUPPET_WORKER_AGENT_RPC_H_
