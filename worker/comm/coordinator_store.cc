#include "worker/comm/coordinator_store.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace muppet::comm {

CoordinatorStore::CoordinatorStore(std::shared_ptr<grpc::Channel> channel, RetryPolicy policy,
                                   std::string worker_id)
    : stub_(v1::RendezvousService::NewStub(std::move(channel))),
      policy_(std::move(policy)),
      worker_id_(std::move(worker_id)) {}

absl::Status CoordinatorStore::Set(const std::string& key, const std::string& value) {
  v1::SetRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_worker_id(worker_id_);
  return CallWithRetry(policy_, nullptr, [&]() -> absl::Status {
    v1::SetResponse response;
    const absl::Status s = FromGrpc(stub_->Set(policy_.Context().get(), request, &response));
    // A quota does not heal by waiting: not a reason to retry, as an overloaded server is.
    if (s.code() == absl::StatusCode::kResourceExhausted) {
      return absl::FailedPreconditionError(s.message());
    }
    return s;
  });
}

absl::StatusOr<std::vector<std::string>> CoordinatorStore::Get(const std::vector<std::string>& keys,
                                                               absl::Duration timeout) {
  v1::GetRequest request;
  for (const std::string& k : keys) request.add_keys(k);
  request.set_worker_id(worker_id_);
  request.set_wait(true);
  // The wait happens on the server; retries (coordinator unavailable) only spend what is left
  // of it. A DEADLINE_EXCEEDED from the server is the answer, not a reason to retry.
  const absl::Time end = absl::Now() + timeout;
  Backoff backoff = policy_.NewBackoff();
  while (true) {
    const absl::Duration left = std::max(absl::Milliseconds(1), end - absl::Now());
    request.mutable_timeout()->set_seconds(absl::ToInt64Seconds(left));
    request.mutable_timeout()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(left % absl::Seconds(1))));
    v1::GetResponse response;
    const absl::Status s = FromGrpc(stub_->Get(
        CallContext(policy_.token, left + policy_.call_timeout).get(), request, &response));
    if (s.ok()) return std::vector<std::string>(response.values().begin(), response.values().end());
    if (s.code() != absl::StatusCode::kUnavailable || absl::Now() + backoff.current() > end) {
      return s;
    }
    SleepUnlessStopped(backoff.Next(), nullptr);
  }
}

absl::StatusOr<int64_t> CoordinatorStore::Add(const std::string& key, int64_t delta) {
  v1::AddRequest request;
  request.set_key(key);
  request.set_delta(delta);
  request.set_worker_id(worker_id_);
  v1::AddResponse response;
  // Not retried: a lost reply would add twice.
  if (absl::Status s = FromGrpc(stub_->Add(policy_.Context().get(), request, &response)); !s.ok()) {
    return s;
  }
  return response.value();
}

absl::StatusOr<uint64_t> CoordinatorStore::DeletePrefix(const std::string& prefix) {
  v1::DeletePrefixRequest request;
  request.set_prefix(prefix);
  request.set_worker_id(worker_id_);
  v1::DeletePrefixResponse response;
  if (absl::Status s = CallWithRetry(policy_, nullptr,
                                     [&] {
                                       return FromGrpc(stub_->DeletePrefix(policy_.Context().get(),
                                                                           request, &response));
                                     });
      !s.ok()) {
    return s;
  }
  return response.deleted();
}

}  // namespace muppet::comm
