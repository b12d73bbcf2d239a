#include "worker/comm/nccl_communicator.h"

#include "absl/strings/str_cat.h"

#if MUPPET_WITH_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "kernels/cuda/check.h"
#endif

namespace muppet::comm {

#if MUPPET_WITH_CUDA
namespace {

constexpr char kIdKey[] = "nccl_unique_id";

absl::Status NcclError(ncclResult_t result, absl::string_view what) {
  return absl::InternalError(absl::StrCat("nccl ", what, ": ", ncclGetErrorString(result)));
}

absl::StatusOr<ncclDataType_t> NcclType(DataType type) {
  switch (type) {
    case DataType::kInt32:
      return ncclInt32;
    case DataType::kInt64:
      return ncclInt64;
    case DataType::kFloat32:
      return ncclFloat32;
    case DataType::kFloat64:
      return ncclFloat64;
    case DataType::kInt16:
      break;
  }
  return absl::UnimplementedError("nccl backend does not support allreduce of int16");
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, cudaStream_t stream, int rank, int size)
      : comm_(comm), stream_(stream), rank_(rank), size_(size) {}

  ~NcclCommunicator() override {
    if (comm_ != nullptr) broken_.ok() ? ncclCommDestroy(comm_) : ncclCommAbort(comm_);
    if (scratch_ != nullptr) cudaFree(scratch_);
    cudaStreamDestroy(stream_);
  }

  absl::string_view backend() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  absl::Status AllReduceBuffer(void* data, size_t count, DataType type, ReduceOp op,
                               absl::Duration timeout) override {
    absl::StatusOr<ncclDataType_t> t = NcclType(type);
    if (!t.ok()) return t.status();
    if (count == 0) return absl::OkStatus();
    return Run(absl::StrCat("allreduce (", Name(op), ", ", Name(type), ")"), timeout, [&] {
      return ncclAllReduce(data, data, count, *t, op == ReduceOp::kSum ? ncclSum : ncclMax, comm_,
                           stream_);
    });
  }

  absl::Status Broadcast(std::span<std::byte> data, int root, absl::Duration timeout) override {
    if (absl::Status s = CheckRoot(root); !s.ok()) return s;
    if (data.empty()) return absl::OkStatus();
    return Run("broadcast", timeout, [&] {
      return ncclBroadcast(data.data(), data.data(), data.size(), ncclUint8, root, comm_, stream_);
    });
  }

  absl::StatusOr<std::vector<std::string>> AllGather(absl::string_view value,
                                                     absl::Duration timeout) override {
    // Lengths first, then every value padded to the longest, staged through device memory.
    if (absl::Status s = Scratch(sizeof(int64_t) * size_); !s.ok()) return s;
    int64_t* lengths = static_cast<int64_t*>(scratch_);
    const int64_t mine = static_cast<int64_t>(value.size());
    MUPPET_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(lengths, 0, sizeof(int64_t) * size_, stream_));
    MUPPET_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(lengths + rank_, &mine, sizeof(mine), cudaMemcpyHostToDevice, stream_));
    if (absl::Status s = AllReduceBuffer(lengths, size_, DataType::kInt64, ReduceOp::kSum, timeout);
        !s.ok()) {
      return s;
    }
    std::vector<int64_t> host(size_);
    MUPPET_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(host.data(), lengths, sizeof(int64_t) * size_, cudaMemcpyDeviceToHost));
    size_t longest = 1;
    for (int64_t n : host) longest = std::max(longest, static_cast<size_t>(n));
    if (absl::Status s = Scratch(longest * (size_ + 1)); !s.ok()) return s;
    char* in = static_cast<char*>(scratch_);
    char* out = in + longest;
    MUPPET_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(in, 0, longest, stream_));
    MUPPET_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(in, value.data(), value.size(), cudaMemcpyHostToDevice, stream_));
    if (absl::Status s =
            Run("allgather", timeout,
                [&] { return ncclAllGather(in, out, longest, ncclUint8, comm_, stream_); });
        !s.ok()) {
      return s;
    }
    std::string all(longest * size_, '\0');
    MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpy(all.data(), out, all.size(), cudaMemcpyDeviceToHost));
    std::vector<std::string> values;
    for (int r = 0; r < size_; ++r) values.push_back(all.substr(r * longest, host[r]));
    return values;
  }

  absl::Status Barrier(absl::Duration timeout) override {
    if (absl::Status s = Scratch(sizeof(int32_t)); !s.ok()) return s;
    return AllReduceBuffer(scratch_, 1, DataType::kInt32, ReduceOp::kSum, timeout);
  }

 private:
  // Enqueues one NCCL call on the stream, then watches it: done when the stream reaches an
  // event recorded after it; aborted (the communicator then broken) on an asynchronous NCCL
  // error or when `timeout` passes first.
  template <typename Enqueue>
  absl::Status Run(absl::string_view op, absl::Duration timeout, Enqueue&& enqueue) {
    if (!broken_.ok()) return broken_;
    const absl::Time deadline = absl::Now() + timeout;
    const std::string what = absl::StrCat(op, " on rank ", rank_, " of ", size_);
    ncclResult_t r = enqueue();
    if (r != ncclSuccess && r != ncclInProgress) return Break(NcclError(r, what));
    cudaEvent_t done;
    MUPPET_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    absl::Status status =
        cuda::ToStatus(cudaEventRecord(done, stream_), "cudaEventRecord", __FILE__, __LINE__);
    while (status.ok()) {
      const cudaError_t q = cudaEventQuery(done);
      if (q == cudaSuccess) break;
      if (q != cudaErrorNotReady) {
        status = cuda::ToStatus(q, "cudaEventQuery", __FILE__, __LINE__);
        break;
      }
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        status = Break(NcclError(async, what));
      } else if (absl::Now() > deadline) {
        status = Break(absl::DeadlineExceededError(absl::StrCat(
            "nccl ", what, ": not done within ", absl::FormatDuration(timeout), "; aborted")));
      } else {
        absl::SleepFor(absl::Microseconds(50));
      }
    }
    cudaEventDestroy(done);
    return status;
  }

  // Aborts the communicator (pending operations end with an error) and keeps `status` for
  // every later call.
  absl::Status Break(absl::Status status) {
    ncclCommAbort(comm_);
    comm_ = nullptr;
    broken_ = status;
    return status;
  }

  // A device buffer of at least `bytes`.
  absl::Status Scratch(size_t bytes) {
    if (bytes <= scratch_bytes_) return absl::OkStatus();
    if (scratch_ != nullptr) cudaFree(scratch_);
    scratch_ = nullptr;
    MUPPET_CUDA_RETURN_IF_ERROR(cudaMalloc(&scratch_, bytes));
    scratch_bytes_ = bytes;
    return absl::OkStatus();
  }

  ncclComm_t comm_;
  cudaStream_t stream_;
  const int rank_;
  const int size_;
  absl::Status broken_;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
};

// Rank 0's unique id, created by rank 0 and read by the others from the store.
absl::StatusOr<ncclUniqueId> ExchangeId(const NcclOptions& options, Store& store) {
  ncclUniqueId id;
  if (options.rank == 0) {
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      return NcclError(r, "ncclGetUniqueId");
    }
    if (absl::Status s = store.Set(kIdKey, std::string(id.internal, sizeof(id.internal)));
        !s.ok()) {
      return s;
    }
    return id;
  }
  absl::StatusOr<std::vector<std::string>> got = store.Get({kIdKey}, options.connect_timeout);
  if (!got.ok()) return got.status();
  if (got->front().size() != sizeof(id.internal)) {
    return absl::InternalError(absl::StrCat("nccl: the stored unique id has ", got->front().size(),
                                            " bytes, not ", sizeof(id.internal)));
  }
  std::memcpy(id.internal, got->front().data(), sizeof(id.internal));
  return id;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> ConnectNccl(const NcclOptions& options,
                                                          Store& store) {
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("nccl: rank ", options.rank, " is not in [0, size ", options.size, ")"));
  }
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  absl::StatusOr<ncclUniqueId> id = ExchangeId(options, store);
  if (!id.ok()) return id.status();
  MUPPET_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
  cudaStream_t stream;
  MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // Initialisation and collectives return at once; we poll with a deadline.
  ncclComm_t comm = nullptr;
  ncclResult_t r = ncclCommInitRankConfig(&comm, options.size, *id, options.rank, &config);
  while (r == ncclInProgress) {
    if (absl::Now() > deadline) {
      ncclCommAbort(comm);
      cudaStreamDestroy(stream);
      return absl::DeadlineExceededError(absl::StrCat(
          "nccl rendezvous (rank ", options.rank, " of ", options.size,
          "): not every rank joined within ", absl::FormatDuration(options.connect_timeout)));
    }
    absl::SleepFor(absl::Milliseconds(1));
    ncclCommGetAsyncError(comm, &r);
  }
  if (r != ncclSuccess) {
    if (comm != nullptr) ncclCommAbort(comm);
    cudaStreamDestroy(stream);
    return NcclError(r, "ncclCommInitRankConfig");
  }
  return std::make_unique<NcclCommunicator>(comm, stream, options.rank, options.size);
}

#else  // !MUPPET_WITH_CUDA

absl::StatusOr<std::unique_ptr<Communicator>> ConnectNccl(const NcclOptions&, Store&) {
  return absl::UnimplementedError("nccl backend: this muppet was built without CUDA");
}

#endif

}  // namespace muppet::comm
