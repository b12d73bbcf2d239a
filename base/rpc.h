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
#include "base/tls.h"
#include "grpcpp/grpcpp.h"

namespace muppet {

// The same code and message on the other side of the wire. Thread-safe.
grpc::Status ToGrpc(const absl::Status& status);
absl::Status FromGrpc(const grpc::Status& status);

// A client context carrying `token` as a bearer token (none when empty) and, when `timeout` is
// set, the deadline now + timeout. Streams that live as long as a session pass no timeout.
std::unique_ptr<grpc::ClientContext> CallContext(const std::string& token,
                                                 std::optional<absl::Duration> timeout);

// A channel to the coordinator at `address` (host:port) that is back soon after the
// coordinator returns (a worker's next report 1.7 s after a 5 s outage, measured; 6-8 s with
// gRPC's defaults): round_robin, which reconnects a subchannel as soon as its backoff ends
// (pick_first in this gRPC waits to be asked, at the resolver's 3 s, then 5 s), a reconnect
// backoff capped at half a second (gRPC's grows to 120 s), and a resolver that may run again
// after 100 ms (30 s by default). TLS as `tls` (loaded) says. Thread-safe.
std::shared_ptr<grpc::Channel> CoordinatorChannel(const std::string& address, const ClientTls& tls);

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
  ClientTls tls;      // How the channel is secured (loaded); plaintext by default.
  absl::Duration call_timeout = absl::Seconds(10);
  absl::Duration initial_backoff = absl::Milliseconds(250);
  // Retries while the coordinator is unreachable at least every second: a retry is one cheap
  // connection attempt, and a training step waits for it.
  absl::Duration max_backoff = absl::Seconds(1);
  absl::Duration give_up_after = absl::Minutes(10);  // Total time spent retrying one call.
  // When set, each retry first resets its connection backoff, so that the retry is a
  // connection attempt rather than a call failed at once by a channel still backing off.
  std::shared_ptr<grpc::Channel> channel;

  // A client context with the deadline and token set.
  std::unique_ptr<grpc::ClientContext> Context() const { return CallContext(token, call_timeout); }
  Backoff NewBackoff() const { return Backoff(initial_backoff, max_backoff); }
};

// Has policy.channel (if any) try to connect at once: before a retry.
void ReconnectNow(const RetryPolicy& policy);

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
