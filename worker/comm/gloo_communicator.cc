#include "worker/comm/gloo_communicator.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gloo/allgather.h"
#include "gloo/allreduce.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/common/error.h"
#include "gloo/math.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "worker/comm/gloo_store.h"

namespace muppet::comm {
namespace {

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

template <typename T>
ReduceFn ReduceOf(ReduceOp op) {
  return op == ReduceOp::kSum ? static_cast<ReduceFn>(&gloo::sum<T>)
                              : static_cast<ReduceFn>(&gloo::max<T>);
}

ReduceFn ReduceOf(DataType type, ReduceOp op) {
  switch (type) {
    case DataType::kInt16:
      return ReduceOf<int16_t>(op);
    case DataType::kInt32:
      return ReduceOf<int32_t>(op);
    case DataType::kInt64:
      return ReduceOf<int64_t>(op);
    case DataType::kFloat32:
      return ReduceOf<float>(op);
    case DataType::kFloat64:
      return ReduceOf<double>(op);
  }
  return nullptr;
}

std::chrono::milliseconds ToGloo(absl::Duration timeout) {
  // Gloo reads a zero timeout as "none"; ours always bound the operation.
  return std::max(std::chrono::milliseconds(1), absl::ToChronoMilliseconds(timeout));
}

class GlooCommunicator final : public Communicator {
 public:
  explicit GlooCommunicator(std::shared_ptr<gloo::rendezvous::Context> context)
      : context_(std::move(context)) {}

  absl::string_view backend() const override { return "gloo"; }
  int rank() const override { return context_->rank; }
  int size() const override { return context_->size; }

  absl::Status AllReduceBuffer(void* data, size_t count, DataType type, ReduceOp op,
                               absl::Duration timeout) override {
    if (count == 0) return absl::OkStatus();
    return Run(absl::StrCat("allreduce (", Name(op), ", ", Name(type), ")"), [&] {
      gloo::AllreduceOptions opts(context_);
      opts.setTimeout(ToGloo(timeout));
      std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> out;
      out.push_back(context_->createUnboundBuffer(data, count * SizeOf(type)));
      SetOutput(opts, type, std::move(out));
      opts.setReduceFunction(ReduceOf(type, op));
      gloo::allreduce(opts);
    });
  }

  absl::Status Broadcast(std::span<std::byte> data, int root, absl::Duration timeout) override {
    if (absl::Status s = CheckRoot(root); !s.ok()) return s;
    if (data.empty()) return absl::OkStatus();
    return Run("broadcast", [&] {
      gloo::BroadcastOptions opts(context_);
      opts.setTimeout(ToGloo(timeout));
      opts.setRoot(root);
      opts.setOutput(reinterpret_cast<uint8_t*>(data.data()), data.size());
      gloo::broadcast(opts);
    });
  }

  absl::StatusOr<std::vector<std::string>> AllGather(absl::string_view value,
                                                     absl::Duration timeout) override {
    // Two rounds: every length, then every value padded to the longest.
    std::vector<int64_t> lengths(size());
    lengths[rank()] = static_cast<int64_t>(value.size());
    if (absl::Status s = AllReduce(std::span<int64_t>(lengths), ReduceOp::kSum, timeout); !s.ok()) {
      return s;
    }
    size_t longest = 1;
    for (int64_t n : lengths) longest = std::max(longest, static_cast<size_t>(n));
    std::vector<char> in(longest, 0), out(longest * size());
    std::memcpy(in.data(), value.data(), value.size());
    absl::Status s = Run("allgather", [&] {
      gloo::AllgatherOptions opts(context_);
      opts.setTimeout(ToGloo(timeout));
      opts.setInput(in.data(), in.size());
      opts.setOutput(out.data(), out.size());
      gloo::allgather(opts);
    });
    if (!s.ok()) return s;
    std::vector<std::string> values;
    for (int r = 0; r < size(); ++r) values.emplace_back(&out[r * longest], lengths[r]);
    return values;
  }

  absl::Status Barrier(absl::Duration timeout) override {
    return Run("barrier", [&] {
      gloo::BarrierOptions opts(context_);
      opts.setTimeout(ToGloo(timeout));
      gloo::barrier(opts);
    });
  }

 private:
  static void SetOutput(gloo::AllreduceOptions& opts, DataType type,
                        std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> out) {
    switch (type) {
      case DataType::kInt16:
        return opts.setOutputs<int16_t>(std::move(out));
      case DataType::kInt32:
        return opts.setOutputs<int32_t>(std::move(out));
      case DataType::kInt64:
        return opts.setOutputs<int64_t>(std::move(out));
      case DataType::kFloat32:
        return opts.setOutputs<float>(std::move(out));
      case DataType::kFloat64:
        return opts.setOutputs<double>(std::move(out));
    }
  }

  // Runs a Gloo collective, turning its exceptions into a Status that names the operation and
  // this rank. After an error the pairs are broken: every later operation fails too.
  template <typename Fn>
  absl::Status Run(absl::string_view op, Fn&& fn) {
    if (!broken_.ok()) return broken_;
    try {
      fn();
      return absl::OkStatus();
    } catch (const std::exception& e) {
      const std::string message =
          absl::StrCat("gloo ", op, " on rank ", rank(), " of ", size(), ": ", e.what());
      broken_ = absl::StrContains(e.what(), "Timed out") ? absl::DeadlineExceededError(message)
                                                         : absl::UnavailableError(message);
      return broken_;
    }
  }

  std::shared_ptr<gloo::rendezvous::Context> context_;
  absl::Status broken_;
};

// The ranks whose address is not in `store` ("ranks 1, 3"). Gloo's rendezvous keys each rank's
// address under its decimal rank.
std::string MissingPeers(Store& store, int size) {
  std::vector<std::string> missing;
  for (int r = 0; r < size; ++r) {
    if (!store.Get({std::to_string(r)}, absl::Milliseconds(1)).ok()) {
      missing.push_back(std::to_string(r));
    }
  }
  return absl::StrCat(missing.size() == 1 ? "rank " : "ranks ", absl::StrJoin(missing, ", "));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> ConnectGloo(const GlooOptions& options,
                                                          Store& store) {
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("gloo: rank ", options.rank, " is not in [0, size ", options.size, ")"));
  }
  const std::string where =
      absl::StrCat("gloo rendezvous (rank ", options.rank, " of ", options.size, ")");
  GlooStore gloo_store(store, options.connect_timeout);
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = options.hostname;
    std::shared_ptr<gloo::transport::Device> device = gloo::transport::tcp::CreateDevice(attr);
    auto context = std::make_shared<gloo::rendezvous::Context>(options.rank, options.size);
    context->setTimeout(ToGloo(options.connect_timeout));
    context->connectFullMesh(gloo_store, device);
    return std::make_unique<GlooCommunicator>(std::move(context));
  } catch (const std::exception& e) {
    // The store's own error keeps its code (DEADLINE_EXCEEDED naming the missing peers).
    const absl::Status stored = gloo_store.first_error();
    if (stored.code() == absl::StatusCode::kDeadlineExceeded) {
      return absl::DeadlineExceededError(
          absl::StrCat(where, ": no address from ", MissingPeers(store, options.size), " within ",
                       absl::FormatDuration(options.connect_timeout)));
    }
    if (!stored.ok()) {
      return absl::Status(stored.code(), absl::StrCat(where, ": ", stored.message()));
    }
    return absl::UnavailableError(absl::StrCat(where, ": ", e.what()));
  }
}

}  // namespace muppet::comm
