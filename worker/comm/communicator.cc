#include "worker/comm/communicator.h"

#include "absl/strings/str_cat.h"

namespace muppet::comm {

size_t SizeOf(DataType type) {
  switch (type) {
    case DataType::kInt16:
      return 2;
    case DataType::kInt32:
    case DataType::kFloat32:
      return 4;
    case DataType::kInt64:
    case DataType::kFloat64:
      return 8;
  }
  return 0;
}

absl::string_view Name(DataType type) {
  switch (type) {
    case DataType::kInt16:
      return "int16";
    case DataType::kInt32:
      return "int32";
    case DataType::kInt64:
      return "int64";
    case DataType::kFloat32:
      return "float32";
    case DataType::kFloat64:
      return "float64";
  }
  return "unknown";
}

absl::string_view Name(ReduceOp op) { return op == ReduceOp::kSum ? "sum" : "max"; }

absl::Status Communicator::AllReduceBuffer(void*, size_t, DataType type, ReduceOp op,
                                           absl::Duration) {
  return Unsupported(absl::StrCat("allreduce (", Name(op), ", ", Name(type), ")"));
}

absl::Status Communicator::Broadcast(std::span<std::byte>, int, absl::Duration) {
  return Unsupported("broadcast");
}

absl::StatusOr<std::vector<std::string>> Communicator::AllGather(absl::string_view,
                                                                 absl::Duration) {
  return Unsupported("allgather");
}

absl::Status Communicator::Barrier(absl::Duration) { return Unsupported("barrier"); }

absl::Status Communicator::Unsupported(absl::string_view op) const {
  return absl::UnimplementedError(absl::StrCat(backend(), " backend does not support ", op));
}

absl::Status Communicator::CheckRoot(int root) const {
  if (root < 0 || root >= size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(backend(), " broadcast: root ", root, " is not a rank in [0, ", size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status SoloCommunicator::AllReduceBuffer(void*, size_t, DataType, ReduceOp, absl::Duration) {
  return absl::OkStatus();
}

absl::Status SoloCommunicator::Broadcast(std::span<std::byte>, int root, absl::Duration) {
  return CheckRoot(root);
}

absl::StatusOr<std::vector<std::string>> SoloCommunicator::AllGather(absl::string_view value,
                                                                     absl::Duration) {
  return std::vector<std::string>{std::string(value)};
}

absl::Status SoloCommunicator::Barrier(absl::Duration) { return absl::OkStatus(); }

}  // namespace muppet::comm
