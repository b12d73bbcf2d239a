#include "kernels/cpu/quantize.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/quantize_internal.h"

namespace muppet::kernels {
namespace internal {

QuantizeParams MakeParams(const QuantizeOptions& o) {
  return GridParams(o.word_length, o.exponent, o.rounding == Rounding::kStochastic, o.seed,
                    o.stream);
}

absl::Status EmptyTensorError() { return absl::InvalidArgumentError("MinMax of an empty tensor"); }

absl::Status NonFiniteError(int64_t index, float value) {
  return absl::InvalidArgumentError(
      absl::StrCat("cannot quantise: element ", index, " is ", value));
}

void ScanRange(const float* x, int64_t n, Isa isa, float* min, float* max, bool* non_finite) {
  int64_t done = 0;
  if (isa != Isa::kScalar) {
    const int64_t width = isa == Isa::kAvx512 ? 16 : 8;  // Floats a vector.
    done = n / width * width;
    if (done > 0 && isa == Isa::kAvx512) MinMaxAvx512(x, done, min, max, non_finite);
    if (done > 0 && isa == Isa::kAvx2) MinMaxAvx2(x, done, min, max, non_finite);
  }
  for (int64_t i = done; i < n; ++i) {
    *non_finite |= !std::isfinite(x[i]);
    *min = std::min(*min, x[i]);
    *max = std::max(*max, x[i]);
  }
}

namespace {

template <typename Code>
int64_t QuantizeSpanImpl(const float* x, int64_t n, int64_t first_index, const QuantizeParams& p,
                         Isa isa, Code* out) {
  int64_t saturated = 0, done = 0;
  if (isa != Isa::kScalar) {
    const int64_t first = first_index / kBlock, blocks = n / kBlock;
    done = blocks * kBlock;
    if (blocks > 0) {
      saturated += isa == Isa::kAvx512 ? QuantizeBlocksAvx512(x, first, first + blocks, p, out)
                                       : QuantizeBlocksAvx2(x, first, first + blocks, p, out);
    }
  }
  for (int64_t i = done; i < n; ++i) {
    bool sat;
    out[i] =
        static_cast<Code>(QuantizeElement(x[i], static_cast<uint64_t>(first_index + i), p, &sat));
    saturated += sat;
  }
  return saturated;
}

}  // namespace

int64_t QuantizeSpan(const float* x, int64_t n, int64_t first_index, const QuantizeParams& p,
                     Isa isa, int8_t* out) {
  return QuantizeSpanImpl(x, n, first_index, p, isa, out);
}

int64_t QuantizeSpan(const float* x, int64_t n, int64_t first_index, const QuantizeParams& p,
                     Isa isa, int16_t* out) {
  return QuantizeSpanImpl(x, n, first_index, p, isa, out);
}

}  // namespace internal

namespace {

using internal::kBlock;

// Blocks of work below which a tensor is scanned or quantised on the calling thread.
constexpr int64_t kMinBlocksPerThread = 64;

// The threads for a tensor of n elements: one for the scalar reference.
int ThreadsFor(int64_t n, Isa isa) {
  if (isa == Isa::kScalar) return 1;
  return static_cast<int>(
      std::clamp<int64_t>(n / kBlock / kMinBlocksPerThread, 1, omp_get_max_threads()));
}

// Thread t's elements [*begin, *end): whole blocks, the last thread taking the tail.
void ThreadRange(int64_t n, int t, int threads, int64_t* begin, int64_t* end) {
  const int64_t blocks = n / kBlock;
  *begin = blocks * t / threads * kBlock;
  *end = t + 1 == threads ? n : blocks * (t + 1) / threads * kBlock;
}

template <typename Code>
int64_t QuantizeImpl(std::span<const float> x, const QuantizeOptions& options,
                     std::span<Code> codes, Isa isa) {
  const internal::QuantizeParams p = internal::MakeParams(options);
  const int64_t n = static_cast<int64_t>(x.size());
  const int threads = ThreadsFor(n, isa);
  int64_t saturated = 0;
  // Each element's code depends only on (seed, stream, index), so threads split the blocks
  // without changing any result.
#pragma omp parallel num_threads(threads) reduction(+ : saturated)
  {
    int64_t begin, end;
    ThreadRange(n, omp_get_thread_num(), threads, &begin, &end);
    saturated +=
        internal::QuantizeSpan(x.data() + begin, end - begin, begin, p, isa, codes.data() + begin);
  }
  return saturated;
}

}  // namespace

absl::StatusOr<Range> MinMax(std::span<const float> x, Isa isa) {
  if (x.empty()) return internal::EmptyTensorError();
  const int64_t n = static_cast<int64_t>(x.size());
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  bool non_finite = false;
  const int threads = ThreadsFor(n, isa);
  // Min and max are exact, so the split changes nothing.
#pragma omp parallel num_threads(threads) reduction(min                                \
                                                    : lo) reduction(max                \
                                                                    : hi) reduction(|| \
                                                                                    : non_finite)
  {
    int64_t begin, end;
    ThreadRange(n, omp_get_thread_num(), threads, &begin, &end);
    float l = std::numeric_limits<float>::infinity(), h = -l;
    bool bad = false;
    internal::ScanRange(x.data() + begin, end - begin, isa, &l, &h, &bad);
    lo = std::min(lo, l);
    hi = std::max(hi, h);
    non_finite = non_finite || bad;
  }
  if (non_finite) {
    const auto bad = std::find_if(x.begin(), x.end(), [](float v) { return !std::isfinite(v); });
    return internal::NonFiniteError(bad - x.begin(), *bad);
  }
  return Range{lo, hi};
}

void RangeScan::Add(const float* x, int64_t n, Isa isa) {
  internal::ScanRange(x, n, isa, &min, &max, &non_finite);
}

void RangeScan::Merge(const RangeScan& other) {
  min = std::min(min, other.min);
  max = std::max(max, other.max);
  non_finite = non_finite || other.non_finite;
}

std::optional<Range> RangeScan::range() const {
  if (non_finite || min > max) return std::nullopt;
  return Range{min, max};
}

int ScaleExponent(Range range, int word_length) {
  return ScaleExponentOf(range.min, range.max, word_length);
}

int64_t Quantize(std::span<const float> x, const QuantizeOptions& options, std::span<int8_t> codes,
                 Isa isa) {
  return QuantizeImpl(x, options, codes, isa);
}

int64_t Quantize(std::span<const float> x, const QuantizeOptions& options, std::span<int16_t> codes,
                 Isa isa) {
  return QuantizeImpl(x, options, codes, isa);
}

}  // namespace muppet::kernels
