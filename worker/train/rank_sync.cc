#include "worker/train/rank_sync.h"

#include <numeric>

#include "absl/strings/str_cat.h"

namespace muppet {

absl::Status BroadcastModelState(comm::Communicator& comm,
                                 const std::vector<Parameter*>& parameters,
                                 const std::vector<std::pair<std::string, Tensor*>>& buffers,
                                 absl::Duration timeout) {
  std::vector<Tensor*> tensors;
  for (Parameter* p : parameters) tensors.push_back(&p->value);
  for (const auto& [name, t] : buffers) tensors.push_back(t);
  for (Tensor* t : tensors) {
    if (absl::Status s = comm.Broadcast(std::as_writable_bytes(t->span()), 0, timeout); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status AgreeToContinue(comm::Communicator& comm, const absl::Status& local,
                             absl::Duration timeout) {
  // One status code per rank: a sum in which only rank r writes slot r.
  std::vector<int32_t> codes(comm.size(), 0);
  codes[comm.rank()] = static_cast<int32_t>(local.code());
  if (absl::Status s = comm.AllReduce(std::span<int32_t>(codes), comm::ReduceOp::kSum, timeout);
      !s.ok()) {
    return s;
  }
  if (!local.ok()) return local;
  for (int r = 0; r < comm.size(); ++r) {
    const auto code = static_cast<absl::StatusCode>(codes[r]);
    if (code == absl::StatusCode::kOk) continue;
    if (code == absl::StatusCode::kCancelled) {
      return absl::CancelledError(absl::StrCat("training cancelled on rank ", r));
    }
    return absl::AbortedError(
        absl::StrCat("rank ", r, " failed: ", absl::StatusCodeToString(code)));
  }
  return absl::OkStatus();
}

absl::Status SumOverRanks(comm::Communicator& comm, std::span<double> values,
                          absl::Duration timeout) {
  return comm.AllReduce(values, comm::ReduceOp::kSum, timeout);
}

absl::StatusOr<scheduler::Decision> ShareDecision(
    comm::Communicator& comm, const absl::StatusOr<scheduler::Decision>& decision,
    absl::Duration timeout) {
  const bool root = comm.rank() == 0;
  // code, next bits, switched, window closed, message length.
  int64_t header[5] = {};
  std::string message;
  if (root) {
    header[0] = static_cast<int64_t>(decision.status().code());
    if (decision.ok()) {
      header[1] = decision->next_precision_bits;
      header[2] = decision->switched;
      header[3] = decision->window_closed;
    } else {
      message = std::string(decision.status().message());
      header[4] = static_cast<int64_t>(message.size());
    }
  }
  if (absl::Status s = comm.Broadcast(std::as_writable_bytes(std::span(header)), 0, timeout);
      !s.ok()) {
    return s;
  }
  const auto code = static_cast<absl::StatusCode>(header[0]);
  if (code != absl::StatusCode::kOk) {
    message.resize(header[4]);
    if (absl::Status s = comm.Broadcast(
            std::as_writable_bytes(std::span(message.data(), message.size())), 0, timeout);
        !s.ok()) {
      return s;
    }
  }
  if (root) return decision;
  if (code != absl::StatusCode::kOk) return absl::Status(code, absl::StrCat("rank 0: ", message));
  return scheduler::Decision{.next_precision_bits = static_cast<int>(header[1]),
                             .switched = header[2] != 0,
                             .window_closed = header[3] != 0};
}

absl::StatusOr<double> RankGradientDiversity(comm::Communicator& comm,
                                             std::span<const double> local_squared_norms,
                                             const std::vector<Parameter*>& parameters,
                                             absl::Duration timeout) {
  double sums[1] = {std::accumulate(local_squared_norms.begin(), local_squared_norms.end(), 0.0)};
  if (absl::Status s = SumOverRanks(comm, sums, timeout); !s.ok()) return s;
  double total = 0;
  for (const Parameter* p : parameters) {
    for (float g : p->grad.span()) total += static_cast<double>(g) * g;
  }
  return total > 0 ? sums[0] / total : 0.0;
}

}  // namespace muppet
