#include "kernels/cpu/quantize.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/philox.h"
#include "kernels/cpu/quantize_internal.h"

namespace muppet::kernels {
namespace internal {

QuantizeParams MakeParams(const QuantizeOptions& o) {
  return {.scale = std::ldexp(1.0f, o.exponent),
          .lo = -std::ldexp(1.0f, o.word_length - 1),
          .hi = std::ldexp(1.0f, o.word_length - 1) - 1.0f,
          .stochastic = o.rounding == Rounding::kStochastic,
          .seed = o.seed,
          .stream = o.stream};
}

float QuantizeOne(float x, int64_t i, const QuantizeParams& p, bool* saturated) {
  const float v = x * p.scale;  // Exact: a power-of-two scale.
  float q;
  if (p.stochastic) {
    const float f = std::floor(v);
    const float frac = v - f;  // Exact (Sterbenz), in [0, 1).
    const float r = static_cast<float>(StochasticBits(p.seed, p.stream, static_cast<uint64_t>(i)));
    q = r < frac * 65536.0f ? f + 1.0f : f;
  } else {
    const float t = std::trunc(v);
    const float d = v - t;  // Exact, in (-1, 1).
    q = d >= 0.5f ? t + 1.0f : (d <= -0.5f ? t - 1.0f : t);
  }
  *saturated = q > p.hi || q < p.lo;
  return std::clamp(q, p.lo, p.hi);
}

}  // namespace internal

namespace {

using internal::kBlock;

// Blocks of work below which a tensor is scanned or quantised on the calling thread.
constexpr int64_t kMinBlocksPerThread = 64;

template <typename Code>
int64_t QuantizeImpl(std::span<const float> x, const QuantizeOptions& options,
                     std::span<Code> codes, Isa isa) {
  const internal::QuantizeParams p = internal::MakeParams(options);
  const int64_t n = static_cast<int64_t>(x.size());
  int64_t saturated = 0, done = 0;
  if (isa != Isa::kScalar) {
    // Each element's code depends only on (seed, stream, index), so threads split the blocks
    // without changing any result.
    const int64_t blocks = n / kBlock;
    done = blocks * kBlock;
    const int threads = static_cast<int>(
        std::clamp<int64_t>(blocks / kMinBlocksPerThread, 1, omp_get_max_threads()));
#pragma omp parallel num_threads(threads) reduction(+ : saturated)
    {
      const int t = omp_get_thread_num();
      const int64_t first = blocks * t / threads, last = blocks * (t + 1) / threads;
      saturated += isa == Isa::kAvx512
                       ? internal::QuantizeBlocksAvx512(x.data(), first, last, p, codes.data())
                       : internal::QuantizeBlocksAvx2(x.data(), first, last, p, codes.data());
    }
  }
  for (int64_t i = done; i < n; ++i) {
    bool sat;
    codes[i] = static_cast<Code>(internal::QuantizeOne(x[i], i, p, &sat));
    saturated += sat;
  }
  return saturated;
}

}  // namespace

absl::StatusOr<Range> MinMax(std::span<const float> x, Isa isa) {
  if (x.empty()) return absl::InvalidArgumentError("MinMax of an empty tensor");
  const int64_t n = static_cast<int64_t>(x.size());
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  bool non_finite = false;
  int64_t done = 0;
  if (isa != Isa::kScalar) {
    // Threads scan whole vectors; min and max are exact, so the split changes nothing.
    const int64_t width = isa == Isa::kAvx512 ? 16 : 8;
    const int64_t vectors = n / width;
    done = vectors * width;
    const int threads = static_cast<int>(std::clamp<int64_t>(
        vectors * width / (kMinBlocksPerThread * kBlock), 1, omp_get_max_threads()));
#pragma omp parallel num_threads(threads) reduction(min                                \
                                                    : lo) reduction(max                \
                                                                    : hi) reduction(|| \
                                                                                    : non_finite)
    {
      const int t = omp_get_thread_num();
      const int64_t first = vectors * t / threads * width,
                    last = vectors * (t + 1) / threads * width;
      float l = std::numeric_limits<float>::infinity(), h = -l;
      bool bad = false;
      if (last > first) {
        if (isa == Isa::kAvx512) {
          internal::MinMaxAvx512(x.data() + first, last - first, &l, &h, &bad);
        } else {
          internal::MinMaxAvx2(x.data() + first, last - first, &l, &h, &bad);
        }
      }
      lo = std::min(lo, l);
      hi = std::max(hi, h);
      non_finite = non_finite || bad;
    }
  }
  for (int64_t i = done; i < n; ++i) {
    non_finite |= !std::isfinite(x[i]);
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (non_finite) {
    const auto bad = std::find_if(x.begin(), x.end(), [](float v) { return !std::isfinite(v); });
    return absl::InvalidArgumentError(
        absl::StrCat("cannot quantise: element ", bad - x.begin(), " is ", *bad));
  }
  return Range{lo, hi};
}

int ScaleExponent(Range range, int word_length) {
  const double m_plus = std::ldexp(1.0, word_length - 1) - 0.5;
  const double m_minus = -std::ldexp(1.0, word_length - 1) - 0.5;
  double ratio = std::numeric_limits<double>::infinity();
  if (range.max > 0) ratio = std::min(ratio, m_plus / range.max);
  if (range.min < 0) ratio = std::min(ratio, m_minus / range.min);
  if (std::isinf(ratio)) return 0;  // All zero.
  int e;
  std::frexp(ratio, &e);  // ratio = m * 2^e with m in [0.5, 1): floor(log2(ratio)) = e - 1.
  return std::clamp(e - 1, -149, 127);
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
