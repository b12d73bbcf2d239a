#include "worker/train/rank_sync.h"

#include <algorithm>
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

absl::StatusOr<std::vector<int64_t>> BroadcastResult(
    comm::Communicator& comm, const absl::StatusOr<std::vector<int64_t>>& result, size_t count,
    absl::Duration timeout) {
  const bool root = comm.rank() == 0;
  // code, message length, then the values.
  std::vector<int64_t> header(2 + count, 0);
  std::string message;
  if (root) {
    header[0] = static_cast<int64_t>(result.status().code());
    if (result.ok()) {
      std::copy(result->begin(), result->end(), header.begin() + 2);
    } else {
      message = std::string(result.status().message());
      header[1] = static_cast<int64_t>(message.size());
    }
  }
  if (absl::Status s = comm.Broadcast(std::as_writable_bytes(std::span(header)), 0, timeout);
      !s.ok()) {
    return s;
  }
  const auto code = static_cast<absl::StatusCode>(header[0]);
  if (code != absl::StatusCode::kOk) {
    message.resize(header[1]);
    if (absl::Status s = comm.Broadcast(
            std::as_writable_bytes(std::span(message.data(), message.size())), 0, timeout);
        !s.ok()) {
      return s;
    }
  }
  if (root) return result;
  if (code != absl::StatusCode::kOk) return absl::Status(code, absl::StrCat("rank 0: ", message));
  return std::vector<int64_t>(header.begin() + 2, header.end());
}

absl::StatusOr<scheduler::Decision> ShareDecision(
    comm::Communicator& comm, const absl::StatusOr<scheduler::Decision>& decision,
    absl::Duration timeout) {
  const absl::StatusOr<std::vector<int64_t>> values =
      decision.ok()
          ? absl::StatusOr<std::vector<int64_t>>(std::vector<int64_t>{
                decision->next_precision_bits, decision->switched, decision->window_closed})
          : decision.status();
  absl::StatusOr<std::vector<int64_t>> shared = BroadcastResult(comm, values, 3, timeout);
  if (!shared.ok()) return shared.status();
  if (comm.rank() == 0) return decision;
  return scheduler::Decision{.next_precision_bits = static_cast<int>((*shared)[0]),
                             .switched = (*shared)[1] != 0,
                             .window_closed = (*shared)[2] != 0};
}

absl::StatusOr<double> RankGradientDiversity(comm::Communicator& comm,
                                             std::span<const double> local_squared_norms,
                                             const std::vector<Parameter*>& parameters,
                                             absl::Duration timeout) {
  double sums[1] = {std::accumulate(local_squared_norms.begin(), local_squared_norms.end(), 0.0)};
  if (absl::Status s = comm.AllReduce(std::span<double>(sums), comm::ReduceOp::kSum, timeout);
      !s.ok()) {
    return s;
  }
  double total = 0;
  for (const Parameter* p : parameters) {
    for (float g : p->grad.span()) total += static_cast<double>(g) * g;
  }
  return total > 0 ? sums[0] / total : 0.0;
}

}  // namespace muppet
