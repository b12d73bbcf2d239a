#include "base/rpc.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace muppet {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::unique_ptr<grpc::ClientContext> CallContext(const std::string& token,
                                                 std::optional<absl::Duration> timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (timeout) ctx->set_deadline(absl::ToChronoTime(absl::Now() + *timeout));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

std::shared_ptr<grpc::Channel> CoordinatorChannel(const std::string& address,
                                                  const ClientTls& tls) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 100);
  args.SetLoadBalancingPolicyName("round_robin");
  return grpc::CreateCustomChannel(address, ChannelCredentials(tls), args);
}

void ReconnectNow(const RetryPolicy& policy) {
  if (policy.channel != nullptr)
    grpc::experimental::ChannelResetConnectionBackoff(policy.channel.get());
}

absl::Duration Backoff::Next() {
  const absl::Duration wait = current_;
  current_ = std::min(2 * current_, max_);
  return wait;
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
  Backoff backoff = policy.NewBackoff();
  while (true) {
    absl::Status s = call();
    if (s.ok() || !IsTransient(s) || absl::Now() + backoff.current() > give_up) return s;
    if (!SleepUnlessStopped(backoff.Next(), stop)) {
      return absl::CancelledError("stopped while retrying");
    }
    ReconnectNow(policy);
  }
}

}  // namespace muppet
