// Allreduce bandwidth over Gloo on loopback (ranks are threads of one process, one core each), in
// the style of nccl-tests: for each message size, the algorithm bandwidth (bytes on the wire per
// rank / time) and the bus bandwidth (algorithm bandwidth x 2(n-1)/n, what a ring moves through
// each link), for float gradients and for MuPPET's fixed-point gradient allreduce (shared exponent,
// int16 or int32 codes, quantisation and conversion included). Each collective is validated on
// every rank before it is timed.
//
//   bazel run -c opt //bench:allreduce -- [--ranks=2] [--max-bytes=67108864]
//
// One line per (collective, size): {"collective", "elements", "wire_bytes", "seconds",
// "algbw_gbps", "busbw_gbps"}; the others than float32 add "float_seconds" and "speedup" (float
// time over theirs, same number of gradient elements, same run).
#include <omp.h>

#include <cmath>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "bench/harness.h"
#include "worker/comm/fixed_point_allreduce.h"
#include "worker/comm/gloo_communicator.h"

ABSL_FLAG(int, ranks, 2, "Ranks (threads of this process, one Gloo pair each).");
ABSL_FLAG(int64_t, min_bytes, 4 << 10, "Smallest float gradient, bytes.");
ABSL_FLAG(int64_t, max_bytes, 64 << 20, "Largest float gradient, bytes.");
ABSL_FLAG(int, iterations, 10, "Timed collectives per size (after one warm-up).");

namespace muppet::bench {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(120);

// One collective under test, nccl-tests style: what travels, and how it is reduced and checked.
enum class Kind {
  kFloat,      // The float gradient allreduce.
  kCodes,      // Integer codes already quantised: Gloo's sum of `wire` alone.
  kFixedPoint  // MuPPET's fixed-point allreduce of the float gradient at `bits`.
};
struct Collective {
  std::string name;
  Kind kind;
  int bits = 0;                                  // kFixedPoint's word length.
  comm::DataType wire = comm::DataType::kInt16;  // kCodes' element type.
};

// A rank's buffers. Codes are small integers (what rank r contributes to element i), and the
// gradient is the same integers times 2^-10: every float sum is then exact and a fixed-point
// grid holds them with room to spare.
struct Buffers {
  std::vector<float> gradient;
  std::vector<int16_t> codes16;
  std::vector<int32_t> codes32;
};

int Code(size_t i, int rank) { return static_cast<int>((i * 7 + rank * 13) % 31) - 15; }

void Fill(Buffers& b, size_t elements, int rank) {
  b.gradient.resize(elements);
  b.codes16.resize(elements);
  b.codes32.resize(elements);
  for (size_t i = 0; i < elements; ++i) {
    b.gradient[i] = std::ldexp(static_cast<float>(Code(i, rank)), -10);
    b.codes16[i] = static_cast<int16_t>(Code(i, rank));
    b.codes32[i] = Code(i, rank);
  }
}

absl::Status Reduce(comm::Communicator& comm, const Collective& c, Buffers& b,
                    comm::FixedPointAllReducer& reducer, uint64_t stream) {
  switch (c.kind) {
    case Kind::kFloat:
      return comm.AllReduce(std::span<float>(b.gradient), comm::ReduceOp::kSum, kTimeout);
    case Kind::kCodes:
      return c.wire == comm::DataType::kInt16
                 ? comm.AllReduce(std::span<int16_t>(b.codes16), comm::ReduceOp::kSum, kTimeout)
                 : comm.AllReduce(std::span<int32_t>(b.codes32), comm::ReduceOp::kSum, kTimeout);
    case Kind::kFixedPoint: {
      std::span<float> tensors[] = {std::span<float>(b.gradient)};
      return reducer
          .Run(comm, tensors, {.bits = c.bits, .seed = 1, .stream = stream, .timeout = kTimeout})
          .status();
    }
  }
  return absl::InternalError("unknown collective");
}

// Every element must equal the sum of the ranks' inputs: exactly for float and codes, and for
// the fixed-point allreduce to within one grid step per rank (stochastic rounding).
absl::Status Check(const Collective& c, const Buffers& b, int ranks,
                   const comm::FixedPointAllReducer& reducer) {
  const double step =
      c.kind == Kind::kFixedPoint ? std::ldexp(1.0, -reducer.exponents()[0]) * ranks : 0;
  for (size_t i = 0; i < b.gradient.size(); ++i) {
    int64_t want = 0;
    for (int r = 0; r < ranks; ++r) want += Code(i, r);
    const double got = c.kind != Kind::kCodes             ? std::ldexp(b.gradient[i], 10)
                       : c.wire == comm::DataType::kInt16 ? b.codes16[i]
                                                          : b.codes32[i];
    if (std::abs(got - static_cast<double>(want)) > std::ldexp(step, 10)) {
      return absl::InternalError(
          absl::StrCat(c.name, ": element ", i, " is ", got, " x 2^-10, want ", want));
    }
  }
  return absl::OkStatus();
}

// Seconds per collective: the slowest rank's mean over `iterations` back-to-back runs, after a
// barrier; the best of five such rounds (the least disturbed on a noisy machine).
absl::StatusOr<double> Time(comm::Communicator& comm, const Collective& c, Buffers& g,
                            comm::FixedPointAllReducer& reducer, int iterations) {
  double best = 1e300;
  for (int round = 0; round < 5; ++round) {
    if (absl::Status s = comm.Barrier(kTimeout); !s.ok()) return s;
    const double start = SteadySeconds();
    for (int i = 0; i < iterations; ++i) {
      if (absl::Status s = Reduce(comm, c, g, reducer, 100 + i); !s.ok()) return s;
    }
    double elapsed[1] = {(SteadySeconds() - start) / iterations};
    if (absl::Status s = comm.AllReduce(std::span<double>(elapsed), comm::ReduceOp::kMax, kTimeout);
        !s.ok()) {
      return s;
    }
    best = std::min(best, elapsed[0]);
  }
  return best;
}

void RunRank(int rank, int ranks, comm::Store& store) {
  omp_set_num_threads(1);  // A core per rank, as data-parallel ranks get them.
  absl::StatusOr<std::unique_ptr<comm::Communicator>> comm =
      comm::ConnectGloo({.rank = rank, .size = ranks, .connect_timeout = absl::Seconds(60)}, store);
  CheckOk(comm.status(), "connect");
  const std::vector<Collective> collectives = {
      {"float32", Kind::kFloat},
      {"int16_codes", Kind::kCodes, 0, comm::DataType::kInt16},
      {"int32_codes", Kind::kCodes, 0, comm::DataType::kInt32},
      {"fixed8", Kind::kFixedPoint, 8},
      {"fixed16", Kind::kFixedPoint, 16}};
  const double bus = 2.0 * (ranks - 1) / ranks;
  comm::FixedPointAllReducer reducer;
  for (int64_t bytes = absl::GetFlag(FLAGS_min_bytes); bytes <= absl::GetFlag(FLAGS_max_bytes);
       bytes *= 4) {
    const size_t elements = static_cast<size_t>(bytes / 4);
    const int iterations =
        std::max(1, static_cast<int>(absl::GetFlag(FLAGS_iterations) * (4 << 20) /
                                     std::max<int64_t>(bytes, 4 << 20)));
    double float_seconds = 0;
    for (const Collective& c : collectives) {
      Buffers g;
      Fill(g, elements, rank);
      CheckOk(Reduce(**comm, c, g, reducer, 0), c.name);
      CheckOk(Check(c, g, ranks, reducer), "validation");
      // Timing sums the buffers again and again: values grow (integer codes may wrap), which
      // changes no cost.
      absl::StatusOr<double> seconds = Time(**comm, c, g, reducer, iterations);
      CheckOk(seconds.status(), c.name);
      const comm::DataType type = c.kind == Kind::kFloat   ? comm::DataType::kFloat32
                                  : c.kind == Kind::kCodes ? c.wire
                                                           : comm::CodeWireType(c.bits, ranks);
      const int64_t wire = static_cast<int64_t>(elements * comm::SizeOf(type));
      if (c.kind == Kind::kFloat) float_seconds = *seconds;
      if (rank != 0) continue;
      JsonLine line;
      line.Add("collective", c.name)
          .Add("ranks", ranks)
          .Add("elements", static_cast<long long>(elements))
          .Add("wire_bytes", static_cast<long long>(wire))
          .Add("seconds", *seconds)
          .Add("algbw_gbps", wire / *seconds / 1e9)
          .Add("busbw_gbps", wire / *seconds / 1e9 * bus);
      if (c.kind != Kind::kFloat) {
        line.Add("float_seconds", float_seconds).Add("speedup", float_seconds / *seconds);
      }
      line.Print();
    }
  }
}

}  // namespace
}  // namespace muppet::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  muppet::bench::PrintPlatform("allreduce");
  const int ranks = absl::GetFlag(FLAGS_ranks);
  if (ranks < 2 || ranks > 64) muppet::bench::Fail("--ranks must be in [2, 64]");
  muppet::comm::InProcessStore store;
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([r, ranks, &store] { muppet::bench::RunRank(r, ranks, store); });
  }
  for (std::thread& t : threads) t.join();
  return 0;
}
