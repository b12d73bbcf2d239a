#include "worker/agent/rpc.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace muppet {

std::unique_ptr<grpc::ClientContext> RetryPolicy::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + call_timeout));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

bool IsTransient(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded ||
         status.code() == absl::StatusCode::kResourceExhausted;
}

bool SleepUnlessStopped(absl::Duration d, const std::atomic<bool>* stop) {
  const absl::Time end = absl::Now() + d;
  while (absl::Now() < end) {
    if (stop != nullptr && stop->load()) return false;
    absl::SleepFor(std::min(absl::Milliseconds(50), end - absl::Now()));
  }
  return stop == nullptr || !stop->load();
}

absl::Status CallWithRetry(const RetryPolicy& policy, const std::atomic<bool>* stop,
                           const std::function<absl::Status()>& call) {
  const absl::Time give_up = absl::Now() + policy.give_up_after;
  absl::Duration backoff = policy.initial_backoff;
  while (true) {
    absl::Status s = call();
    if (s.ok() || !IsTransient(s) || absl::Now() + backoff > give_up) return s;
    if (!SleepUnlessStopped(backoff, stop)) return absl::CancelledError("stopped while retrying");
    backoff = std::min(2 * backoff, policy.max_backoff);
  }
}

}  // namespace muppet
