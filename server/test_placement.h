// For tests that use RendezvousService: a worker registered with a coordinator and a job placed
// on it, so that the placement's rendezvous prefix is in scope for that worker. Test only.
#ifndef MUPPET_SERVER_TEST_PLACEMENT_H_
#define MUPPET_SERVER_TEST_PLACEMENT_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/coordinator.h"

namespace muppet::server {

struct TestPlacement {
  std::string worker_id;
  std::string job_id;
  std::string rendezvous_prefix;  // Ends with '/'.
};

// Registers a one-slot CPU worker named `worker_name` and submits a one-rank FP32 job, which is
// placed on it at once; returns the ids and the assignment's rendezvous prefix. The placement
// lasts while the worker's lease does (no heartbeats are sent).
absl::StatusOr<TestPlacement> PlaceTestJob(Coordinator& coordinator,
                                           const std::string& worker_name = "test-worker");

}  // namespace muppet::server

#endif  // MUPPET_SERVER_TEST_PLACEMENT_H_
