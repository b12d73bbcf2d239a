// The "gloo" backend: Gloo's TCP transport between the ranks of a job, for CPU training. Ranks
// find each other through a Store (GlooStore adapts ours to Gloo's rendezvous interface) and
// connect a full mesh; collectives then run peer to peer (ring allreduce).
#ifndef MUPPET_WORKER_COMM_GLOO_COMMUNICATOR_H_
#define MUPPET_WORKER_COMM_GLOO_COMMUNICATOR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"
#include "worker/comm/store.h"

namespace muppet::comm {

struct GlooOptions {
  int rank = 0;
  int size = 1;
  // The address (name or IP) this rank listens on, which its peers must reach.
  std::string hostname = "127.0.0.1";
  // How long rendezvous waits for every peer's address and connection.
  absl::Duration connect_timeout = absl::Seconds(60);
};

// Publishes this rank's address in `store` (which the job's ranks share, each job under its own
// prefix), waits for every peer's, and connects to all of them. `store` is used only during the
// call. Errors: INVALID_ARGUMENT for a rank outside [0, size); DEADLINE_EXCEEDED naming the
// missing peers when `connect_timeout` passes; UNAVAILABLE when the store or a peer cannot be
// reached.
absl::StatusOr<std::unique_ptr<Communicator>> ConnectGloo(const GlooOptions& options, Store& store);

}  // namespace muppet::comm

#endif  // MUPPET_WORKER_COMM_GLOO_COMMUNICATOR_H_
