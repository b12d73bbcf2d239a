// What the ranks of a data-parallel job agree on besides gradients: the initial model, whether
// to go on after each step, rank 0's results (the precision decision, the adopted ladder), and
// the across-rank gradient diversity. Each is one or two small collectives, issued by every rank in
// the same order while the gradient reducer is idle.
#ifndef MUPPET_WORKER_TRAIN_RANK_SYNC_H_
#define MUPPET_WORKER_TRAIN_RANK_SYNC_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "scheduler/precision_policy.h"
#include "worker/comm/communicator.h"
#include "worker/nn/layer.h"

namespace muppet {

// Copies rank 0's parameter values and buffers (BatchNorm running statistics) to every rank.
absl::Status BroadcastModelState(comm::Communicator& comm,
                                 const std::vector<Parameter*>& parameters,
                                 const std::vector<std::pair<std::string, Tensor*>>& buffers,
                                 absl::Duration timeout);

// Every rank's verdict on the step it just finished: OK, or why it must stop (CANCELLED, or the
// error it met). Returns OK when all ranks may go on; this rank's own error when it has one;
// otherwise the first stopping rank's reason, as CANCELLED ("cancelled on rank r") or ABORTED
// ("rank r failed: <code>"). The collective's own error if it fails.
absl::Status AgreeToContinue(comm::Communicator& comm, const absl::Status& local,
                             absl::Duration timeout);

// Rank 0's `result` for every rank: `count` integers, or rank 0's error, which comes back with
// its code and its message prefixed "rank 0: " on the others. Rank 0 passes its result; the
// others pass anything. The collective's own error if it fails.
absl::StatusOr<std::vector<int64_t>> BroadcastResult(
    comm::Communicator& comm, const absl::StatusOr<std::vector<int64_t>>& result, size_t count,
    absl::Duration timeout);

// Rank 0's decision (or error) for every rank. Rank 0 passes the controller's result; the others
// pass anything and receive it: the next precision, switched and window_closed (diagnostics stay
// with rank 0, which reports them). A controller error on rank 0 comes back as BroadcastResult
// says.
absl::StatusOr<scheduler::Decision> ShareDecision(
    comm::Communicator& comm, const absl::StatusOr<scheduler::Decision>& decision,
    absl::Duration timeout);

// The across-rank gradient diversity sum_r ||g_r||^2 / ||sum_r g_r||^2 over all parameters,
// from each rank's own squared norms (`local_squared_norms`, per parameter) and the summed
// gradients now in `parameters`: 1/N when every rank computed the same gradient, about 1 when
// the ranks' gradients are orthogonal. 0 if the summed gradient is zero.
absl::StatusOr<double> RankGradientDiversity(comm::Communicator& comm,
                                             std::span<const double> local_squared_norms,
                                             const std::vector<Parameter*>& parameters,
                                             absl::Duration timeout);

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_RANK_SYNC_H_
