// The quantiser on a BatchNorm's described output (fixed_point.h's ChannelAffineRows): y is
// computed a chunk of rows at a time into a per-thread buffer that stays in L1, for the codes
// (and, unless the code extremes give the range, once before for it), so y never goes to memory
// and the consumer reads the producer's codes (a byte or two an element) instead of four bytes
// twice.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <vector>

#include "kernels/cpu/fixed_point.h"
#include "kernels/cpu/fixed_point_internal.h"
#include "kernels/cpu/quantize_internal.h"
#include "kernels/cpu/scratch.h"

namespace muppet::kernels {
namespace {

using internal::kBlock;

// Chunks below which the calling thread does all the work.
constexpr int64_t kMinChunksPerThread = 8;

// Rows per chunk: a multiple of kBlock / gcd(c, kBlock) rows, so that every chunk starts on a
// block of the rounding bits (quantize_internal.h) and its codes are those of the whole tensor.
int64_t ChunkRows(int64_t c) {
  const int64_t unit = kBlock / std::gcd(c, kBlock);
  return std::max<int64_t>(1, kInCacheElements / (unit * c)) * unit;
}

// The chunks of y and the threads that share them, in a fixed split.
struct Chunks {
  explicit Chunks(const ChannelAffineRows& y)
      : y(y),
        rows(ChunkRows(y.x.channels)),
        count((y.x.rows + rows - 1) / rows),
        threads(static_cast<int>(
            std::clamp<int64_t>(count / kMinChunksPerThread, 1, omp_get_max_threads()))) {}

  // Calls fn(first_row, elements, values) for thread t's chunks, with y's values there.
  template <typename Fn>
  void Visit(int t, Isa isa, Fn fn) const {
    VisitRange(count * t / threads, count * (t + 1) / threads, isa, fn);
  }

  // The same for chunks [first, last).
  template <typename Fn>
  void VisitRange(int64_t first, int64_t last, Isa isa, Fn fn) const {
    const int64_t c = y.x.channels;
    const std::span<float> buffer = Scratch<float>(ScratchSlot::kAffineChunk, rows * c);
    for (int64_t k = first; k < last; ++k) {
      const int64_t r0 = k * rows, r1 = std::min(y.x.rows, r0 + rows);
      ChannelAffine(y.x, r0, r1, y.scale, y.shift, y.floor, buffer.data(), {}, isa);
      fn(r0, (r1 - r0) * c, buffer.data());
    }
  }

  const ChannelAffineRows& y;
  const int64_t rows, count;
  const int threads;
};

// The error MinMax gives for y: its first element that is not finite.
absl::Status FirstNonFiniteError(const Chunks& chunks, Isa isa) {
  absl::Status error;
  chunks.VisitRange(0, chunks.count, isa, [&](int64_t r0, int64_t n, const float* v) {
    for (int64_t i = 0; i < n && error.ok(); ++i) {
      if (!std::isfinite(v[i]))
        error = internal::NonFiniteError(r0 * chunks.y.x.channels + i, v[i]);
    }
  });
  return error;
}

// y's range from the affine at each channel's extreme codes (see fixed_point.h), or nullopt where
// they are unknown or a scale or shift is not finite. A non-finite extreme sets non_finite.
std::optional<RangeScan> RangeAtExtremes(const ChannelAffineRows& y, Isa isa) {
  const int64_t c = y.x.channels;
  if (y.code_min == nullptr || y.code_max == nullptr || (y.x.s8 == nullptr && y.x.s16 == nullptr)) {
    return std::nullopt;
  }
  for (int64_t j = 0; j < c; ++j) {
    if (!std::isfinite(y.scale[j]) || !std::isfinite(y.shift[j])) return std::nullopt;
  }
  // Two rows, the smallest codes then the largest, of x's code type.
  std::vector<int16_t> s16;
  std::vector<int8_t> s8;
  ChannelRows extremes{.rows = 2, .channels = c, .factor = y.x.factor};
  if (y.x.s16 != nullptr) {
    s16.insert(s16.end(), y.code_min, y.code_min + c);
    s16.insert(s16.end(), y.code_max, y.code_max + c);
    extremes.s16 = s16.data();
  } else {
    s8.insert(s8.end(), y.code_min, y.code_min + c);
    s8.insert(s8.end(), y.code_max, y.code_max + c);
    extremes.s8 = s8.data();
  }
  std::vector<float> values(2 * c);
  ChannelAffine(extremes, 0, 2, y.scale, y.shift, y.floor, values.data(), {}, isa);
  RangeScan range;
  internal::ScanRange(values.data(), 2 * c, isa, &range.min, &range.max, &range.non_finite);
  return range;
}

// y's range by computing every element, chunk by chunk, on the chunks' threads.
RangeScan RangeOfEveryElement(const Chunks& chunks, Isa isa) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  bool non_finite = false;
#pragma omp parallel num_threads(chunks.threads) reduction(min                   \
                                                           : lo) reduction(max   \
                                                                           : hi) \
    reduction(||                                                                 \
              : non_finite)
  chunks.Visit(omp_get_thread_num(), isa, [&](int64_t, int64_t count, const float* v) {
    internal::ScanRange(v, count, isa, &lo, &hi, &non_finite);
  });
  return {.min = lo, .max = hi, .non_finite = non_finite};
}

}  // namespace

absl::Status QuantizeTensorInto(const ChannelAffineRows& y, int word_length, Rounding rounding,
                                uint64_t seed, uint64_t stream, Quantized& out) {
  if (absl::Status s = internal::CheckWordLength(word_length); !s.ok()) return s;
  const int64_t n = y.x.rows * y.x.channels;
  if (n == 0) return internal::EmptyTensorError();
  const Isa isa = ActiveIsa();
  const Chunks chunks(y);
  const std::optional<RangeScan> at_extremes = RangeAtExtremes(y, isa);
  const RangeScan range = at_extremes ? *at_extremes : RangeOfEveryElement(chunks, isa);
  if (range.non_finite) return FirstNonFiniteError(chunks, isa);
  internal::PrepareCodes(word_length, ScaleExponent({range.min, range.max}, word_length), n, out);
  const internal::QuantizeParams p = internal::MakeParams({.word_length = word_length,
                                                           .exponent = out.exponent,
                                                           .rounding = rounding,
                                                           .seed = seed,
                                                           .stream = stream});
  const int64_t c = y.x.channels;
  int64_t saturated = 0;
#pragma omp parallel num_threads(chunks.threads) reduction(+ : saturated)
  chunks.Visit(omp_get_thread_num(), isa, [&](int64_t r0, int64_t count, const float* v) {
    saturated += word_length <= 8
                     ? internal::QuantizeSpan(v, count, r0 * c, p, isa, out.s8.data() + r0 * c)
                     : internal::QuantizeSpan(v, count, r0 * c, p, isa, out.s16.data() + r0 * c);
  });
  out.saturated = saturated;
  return absl::OkStatus();
}

absl::Status QuantizeOperand(const FixedPointOptions& o, const ChannelAffineRows& y,
                             Operand operand, Quantized& out) {
  return QuantizeTensorInto(y, o.word_length, o.rounding, o.seed, OperandStream(o, operand), out);
}

}  // namespace muppet::kernels
