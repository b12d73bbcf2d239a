// The coordinator's RendezvousService (proto/muppet/v1/rendezvous.proto) as a Store: what the
// ranks of a job on different workers rendezvous through.
#ifndef MUPPET_WORKER_COMM_COORDINATOR_STORE_H_
#define MUPPET_WORKER_COMM_COORDINATOR_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "base/rpc.h"
#include "grpcpp/grpcpp.h"
#include "muppet/v1/rendezvous.grpc.pb.h"
#include "worker/comm/store.h"

namespace muppet::comm {

// Every call carries `policy`'s token and deadline and is retried with its backoff while the
// coordinator is unavailable (a restart); a Get waits up to its timeout on the server, which
// names the missing keys when it passes. Thread-safe.
class CoordinatorStore final : public Store {
 public:
  // Calls as worker `worker_id`, whose placements' rendezvous prefixes bound the keys it may use
  // (proto/muppet/v1/rendezvous.proto).
  CoordinatorStore(std::shared_ptr<grpc::Channel> channel, RetryPolicy policy,
                   std::string worker_id);

  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::vector<std::string>> Get(const std::vector<std::string>& keys,
                                               absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  absl::StatusOr<uint64_t> DeletePrefix(const std::string& prefix) override;

 private:
  std::unique_ptr<v1::RendezvousService::Stub> stub_;
  const RetryPolicy policy_;
  const std::string worker_id_;
};

}  // namespace muppet::comm

#endif  // MUPPET_WORKER_COMM_COORDINATOR_STORE_H_
