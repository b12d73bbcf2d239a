#include "worker/comm/fixed_point_allreduce.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/random.h"
#include "kernels/cpu/fixed_point.h"

namespace muppet::comm {
DataType CodeWireType(int bits, int ranks) {
  const int64_t extreme = static_cast<int64_t>(ranks) << (bits - 1);  // N 2^(b-1).
  return extreme <= (int64_t{1} << 15) ? DataType::kInt16 : DataType::kInt32;
}

absl::Status FixedPointAllReducer::AgreeOnExponents(Communicator& comm,
                                                    std::span<const std::span<float>> tensors,
                                                    const FixedPointAllReduceOptions& options) {
  ranges_.assign(2 * tensors.size(), 0.0f);
  for (size_t t = 0; t < tensors.size(); ++t) {
    if (tensors[t].empty()) continue;
    absl::StatusOr<kernels::Range> range = kernels::MinMax(tensors[t]);
    if (!range.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("fixed-point allreduce: tensor ", t, ": ", range.status().message()));
    }
    ranges_[2 * t] = range->max;
    ranges_[2 * t + 1] = -range->min;
  }
  if (absl::Status s = comm.AllReduce(std::span<float>(ranges_), ReduceOp::kMax, options.timeout);
      !s.ok()) {
    return s;
  }
  exponents_.resize(tensors.size());
  for (size_t t = 0; t < tensors.size(); ++t) {
    exponents_[t] =
        kernels::ScaleExponent({.min = -ranges_[2 * t + 1], .max = ranges_[2 * t]}, options.bits);
  }
  return absl::OkStatus();
}

absl::StatusOr<FixedPointAllReduceStats> FixedPointAllReducer::Run(
    Communicator& comm, std::span<const std::span<float>> tensors,
    const FixedPointAllReduceOptions& options) {
  if (options.bits < 2 || options.bits > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("fixed-point allreduce: bits must be in [2, 16], not ", options.bits));
  }
  if (comm.size() > kMaxFixedPointRanks) {
    return absl::InvalidArgumentError(absl::StrCat("fixed-point allreduce: ", comm.size(),
                                                   " ranks; at most ", kMaxFixedPointRanks,
                                                   " keep 32-bit code sums exact"));
  }
  if (absl::Status s = AgreeOnExponents(comm, tensors, options); !s.ok()) return s;

  size_t total = 0;
  for (std::span<float> t : tensors) total += t.size();
  codes16_.resize(total);
  FixedPointAllReduceStats stats;
  const uint64_t seed = CounterHash(options.seed, static_cast<uint64_t>(comm.rank()));
  size_t offset = 0;
  for (size_t t = 0; t < tensors.size(); ++t) {
    stats.saturated +=
        kernels::Quantize(tensors[t],
                          {.word_length = options.bits,
                           .exponent = exponents_[t],
                           .rounding = options.rounding,
                           .seed = seed,
                           .stream = CounterHash(options.stream, t)},
                          std::span<int16_t>(codes16_).subspan(offset, tensors[t].size()));
    offset += tensors[t].size();
  }

  const DataType wire = CodeWireType(options.bits, comm.size());
  stats.wire_bytes = static_cast<int64_t>(total * SizeOf(wire));
  absl::Status reduced;
  if (wire == DataType::kInt16) {
    reduced = comm.AllReduce(std::span<int16_t>(codes16_), ReduceOp::kSum, options.timeout);
  } else {
    codes32_.assign(codes16_.begin(), codes16_.end());
    reduced = comm.AllReduce(std::span<int32_t>(codes32_), ReduceOp::kSum, options.timeout);
  }
  if (!reduced.ok()) return reduced;

  offset = 0;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const std::span<float> out = tensors[t];
    if (wire == DataType::kInt16) {
      kernels::Dequantize(std::span<const int16_t>(codes16_).subspan(offset, out.size()),
                          exponents_[t], out);
    } else {
      kernels::Dequantize(std::span<const int32_t>(codes32_).subspan(offset, out.size()),
                          exponents_[t], out);
    }
    offset += out.size();
  }
  return stats;
}

}  // namespace muppet::comm
