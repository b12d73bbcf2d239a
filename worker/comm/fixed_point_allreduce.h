// MuPPET's gradient allreduce at a fixed-point level: the ranks put their gradients on one
// shared dynamic fixed-point grid and sum the integer codes exactly, where a float sum would
// round at every step of the ring. Only the final conversion back to float rounds, once.
//
// For each tensor, the ranks agree on one exponent with a tiny allreduce-max of every tensor's
// largest and smallest element (one collective for all the tensors of a call), chosen as
// docs/ALGORITHM.md (section 1) chooses a tensor's own exponent but from the range over every
// rank. Each rank then rounds its values to codes of `bits` bits at that exponent (stochastic
// rounding on a stream of its own) and the codes are summed in an integer allreduce.
//
// Overflow: a code lies in [-2^(b-1), 2^(b-1) - 1], so the sum over N ranks lies in
// [-N 2^(b-1), N (2^(b-1) - 1)], and every partial sum of the ring lies there too. Codes travel
// as int16 when N 2^(b-1) <= 2^15 (8-bit codes up to 256 ranks, 12-bit up to 16) and as int32
// otherwise; int32 holds the sum of 16-bit codes of the largest job allowed (1024 workers x 64
// ranks = 2^16 ranks: at least -2^31, at most 2^31 - 2^16). Larger worlds are refused.
#ifndef MUPPET_WORKER_COMM_FIXED_POINT_ALLREDUCE_H_
#define MUPPET_WORKER_COMM_FIXED_POINT_ALLREDUCE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kernels/cpu/quantize.h"
#include "worker/comm/communicator.h"

namespace muppet::comm {

// The most ranks whose code sums FixedPointAllReduce keeps exact.
inline constexpr int kMaxFixedPointRanks = 1 << 16;

// The integer type that carries the codes of `bits`-bit words summed over `ranks` ranks (int16
// or int32, as above). Requires 2 <= bits <= 16 and 1 <= ranks <= kMaxFixedPointRanks.
DataType CodeWireType(int bits, int ranks);

struct FixedPointAllReduceOptions {
  int bits = 8;  // Word length of the codes, in [2, 16].
  kernels::Rounding rounding = kernels::Rounding::kStochastic;
  // With the rank, selects the rounding bits: callers pass a fresh stream for every call.
  uint64_t seed = 0;
  uint64_t stream = 0;
  absl::Duration timeout = absl::Seconds(60);  // For each of the two collectives.
};

struct FixedPointAllReduceStats {
  int64_t wire_bytes =
      0;  // Bytes of codes each rank contributes (the float allreduce: 4 per value).
  int64_t saturated = 0;  // Codes this rank clamped to the signed range.
};

// Reusable buffers, so that a training step allocates nothing. One per calling thread.
class FixedPointAllReducer {
 public:
  // Replaces every tensor of `tensors` (same sizes, in the same order, on every rank) by the sum
  // over the ranks of its values on the shared grid: sum of codes * 2^-exponent. Errors:
  // INVALID_ARGUMENT for bits outside [2, 16], more than kMaxFixedPointRanks ranks, or a NaN or
  // infinity (naming the tensor's index and element); the communicator's errors. On error the
  // tensors are unspecified.
  absl::StatusOr<FixedPointAllReduceStats> Run(Communicator& comm,
                                               std::span<const std::span<float>> tensors,
                                               const FixedPointAllReduceOptions& options);

  // The exponent each tensor of the last successful Run used.
  const std::vector<int>& exponents() const { return exponents_; }

 private:
  // Agrees on each tensor's exponent: one allreduce-max over every tensor's (max, -min).
  absl::Status AgreeOnExponents(Communicator& comm, std::span<const std::span<float>> tensors,
                                const FixedPointAllReduceOptions& options);

  std::vector<float> ranges_;
  std::vector<int> exponents_;
  std::vector<int16_t> codes16_;
  std::vector<int32_t> codes32_;
};

}  // namespace muppet::comm

#endif  // MUPPET_WORKER_COMM_FIXED_POINT_ALLREDUCE_H_
