// The "nccl" backend: NCCL between the GPUs of a job's ranks, one GPU per rank. Rank 0 creates
// NCCL's unique id and publishes it in the Store; every rank reads it and joins a non-blocking
// communicator. Each operation runs on the rank's own CUDA stream, and a watchdog (the waiting
// loop of every operation) polls the operation's completion and ncclCommGetAsyncError: past the
// operation's timeout, or on an asynchronous error, it calls ncclCommAbort, so a lost or stuck
// peer fails the others on time instead of hanging them. The communicator is then unusable.
//
// Buffers passed to AllReduce and Broadcast are device memory on the rank's GPU; AllGather's
// values are host strings (staged through the device). NCCL has no int16 type: int16 allreduce
// fails with UNIMPLEMENTED naming the backend. Built without CUDA, ConnectNccl is UNIMPLEMENTED.
#ifndef MUPPET_WORKER_COMM_NCCL_COMMUNICATOR_H_
#define MUPPET_WORKER_COMM_NCCL_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"
#include "worker/comm/store.h"

namespace muppet::comm {

struct NcclOptions {
  int rank = 0;
  int size = 1;
  int device = 0;  // CUDA device index of this rank.
  // How long joining may take: waiting for rank 0's id, then NCCL's own initialisation.
  absl::Duration connect_timeout = absl::Seconds(60);
};

// Joins the job's NCCL communicator through `store` (used only during the call). Errors:
// INVALID_ARGUMENT for a rank outside [0, size); DEADLINE_EXCEEDED when rank 0's id or the
// initialisation does not come within the timeout; INTERNAL for a CUDA or NCCL error, naming it;
// UNIMPLEMENTED when muppet was built without CUDA.
absl::StatusOr<std::unique_ptr<Communicator>> ConnectNccl(const NcclOptions& options, Store& store);

}  // namespace muppet::comm

#endif  // MUPPET_WORKER_COMM_NCCL_COMMUNICATOR_H_
