// The collective operations of a job's ranks, in the shape of PyTorch c10d's Backend: rank and
// size, then allreduce, broadcast, allgather and barrier. Every operation takes a timeout and
// returns a Status; an operation a backend lacks fails with UNIMPLEMENTED naming the backend.
//
// Backends: "solo" (one rank, every collective an identity), "gloo" (TCP, CPU tensors;
// gloo_communicator.h) and "nccl" (GPU tensors; nccl_communicator.h). A communicator's operations
// must be issued in the same order on every rank, from one thread at a time.
#ifndef MUPPET_WORKER_COMM_COMMUNICATOR_H_
#define MUPPET_WORKER_COMM_COMMUNICATOR_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace muppet::comm {

enum class DataType { kInt16, kInt32, kInt64, kFloat32, kFloat64 };
enum class ReduceOp { kSum, kMax };

// The DataType of a C++ element type.
template <typename T>
constexpr DataType DataTypeOf() {
  if constexpr (std::is_same_v<T, int16_t>) {
    return DataType::kInt16;
  } else if constexpr (std::is_same_v<T, int32_t>) {
    return DataType::kInt32;
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return DataType::kInt64;
  } else if constexpr (std::is_same_v<T, float>) {
    return DataType::kFloat32;
  } else {
    static_assert(std::is_same_v<T, double>, "not a communicator element type");
    return DataType::kFloat64;
  }
}

size_t SizeOf(DataType type);
absl::string_view Name(DataType type);
absl::string_view Name(ReduceOp op);

class Communicator {
 public:
  virtual ~Communicator() = default;

  // The backend's name ("solo", "gloo", "nccl"), as error messages give it.
  virtual absl::string_view backend() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Reduces `data` element-wise over every rank, in place: afterwards each rank holds the same
  // result. Integer sums are exact (the caller keeps them in range); float sums round in an order
  // the backend fixes. Errors: DEADLINE_EXCEEDED when `timeout` passes, UNAVAILABLE when a peer
  // is lost (the communicator is then unusable), UNIMPLEMENTED for a type or op the backend lacks.
  template <typename T>
  absl::Status AllReduce(std::span<T> data, ReduceOp op, absl::Duration timeout) {
    return AllReduceBuffer(data.data(), data.size(), DataTypeOf<T>(), op, timeout);
  }
  virtual absl::Status AllReduceBuffer(void* data, size_t count, DataType type, ReduceOp op,
                                       absl::Duration timeout);

  // Copies rank `root`'s `data` into every rank's `data` (same size everywhere). Errors as
  // AllReduce, and INVALID_ARGUMENT for a root outside [0, size).
  virtual absl::Status Broadcast(std::span<std::byte> data, int root, absl::Duration timeout);

  // Every rank's `value` (small: an address, a status line), indexed by rank. Values may differ
  // in length. Errors as AllReduce.
  virtual absl::StatusOr<std::vector<std::string>> AllGather(absl::string_view value,
                                                             absl::Duration timeout);

  // Returns once every rank has entered it. Errors as AllReduce.
  virtual absl::Status Barrier(absl::Duration timeout);

 protected:
  // UNIMPLEMENTED: "<backend> backend does not support <op>".
  absl::Status Unsupported(absl::string_view op) const;
  // INVALID_ARGUMENT unless 0 <= root < size.
  absl::Status CheckRoot(int root) const;
};

// One rank: every collective returns its input. For single-process training, so that the
// trainer has one code path.
class SoloCommunicator final : public Communicator {
 public:
  absl::string_view backend() const override { return "solo"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  absl::Status AllReduceBuffer(void* data, size_t count, DataType type, ReduceOp op,
                               absl::Duration timeout) override;
  absl::Status Broadcast(std::span<std::byte> data, int root, absl::Duration timeout) override;
  absl::StatusOr<std::vector<std::string>> AllGather(absl::string_view value,
                                                     absl::Duration timeout) override;
  absl::Status Barrier(absl::Duration timeout) override;
};

}  // namespace muppet::comm

#endif  // MUPPET_WORKER_COMM_COMMUNICATOR_H_
