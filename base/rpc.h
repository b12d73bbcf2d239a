// The gRPC glue that the coordinator, the worker agent and the client share: status conversion
// both ways, the call context (deadline and bearer token), and one retry policy with exponential
// backoff.
#ifndef MUPPET_BASE_RPC_H_
#define MUPPET_BASE_RPC_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace muppet {

// The same code and message on the other side of the wire. Thread-safe.
grpc::Status ToGrpc(const absl::Status& status);
absl::Status FromGrpc(const grpc::Status& status);

// A client context carrying `token` as a bearer token (none when empty) and, when `timeout` is
// set, the deadline now + timeout. Streams that live as long as a session pass no timeout.
std::unique_ptr<grpc::ClientContext> CallContext(const std::string& token,
                                                 std::optional<absl::Duration> timeout);

// Exponential backoff: each Next() returns the current wait and doubles it, up to `max`;
// Reset() returns to `initial` (after a call that worked). Not thread-safe.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max) {}

  absl::Duration current() const { return current_; }
  absl::Duration Next();
  void Reset() { current_ = initial_; }

 private:
  const absl::Duration initial_, max_;
  absl::Duration current_ = initial_;
};

// How muppet's clients call a coordinator: a deadline and the bearer token on every call, and
// retries with exponential backoff while it is unreachable.
struct RetryPolicy {
  std::string token;  // Bearer token; empty sends none.
  absl::Duration call_timeout = absl::Seconds(10);
  absl::Duration initial_backoff = absl::Milliseconds(250);
  absl::Duration max_backoff = absl::Seconds(10);
  absl::Duration give_up_after = absl::Minutes(10);  // Total time spent retrying one call.

  // A client context with the deadline and token set.
  std::unique_ptr<grpc::ClientContext> Context() const { return CallContext(token, call_timeout); }
  Backoff NewBackoff() const { return Backoff(initial_backoff, max_backoff); }
};

// Whether a failed call may succeed if tried again (the coordinator is restarting or busy).
bool IsTransient(const absl::Status& status);

// Runs `call` until it succeeds, fails for good, `policy.give_up_after` passes, or `stop` is
// set (then CANCELLED). Waits between tries double from initial_backoff up to max_backoff.
absl::Status CallWithRetry(const RetryPolicy& policy, const std::atomic<bool>* stop,
                           const std::function<absl::Status()>& call);

// Sleeps for `d`, waking early when `stop` is set. Returns false if stopped.
bool SleepUnlessStopped(absl::Duration d, const std::atomic<bool>* stop);

}  // namespace muppet

#endif  // MUPPET_BASE_RPC_H_
