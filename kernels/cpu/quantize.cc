#include "kernels/cpu/quantize.h"

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

template <typename Code>
int64_t QuantizeImpl(std::span<const float> x, const QuantizeOptions& options,
                     std::span<Code> codes, Isa isa) {
  const internal::QuantizeParams p = internal::MakeParams(options);
  const int64_t n = static_cast<int64_t>(x.size());
  int64_t saturated = 0, done = 0;
  if (isa == Isa::kAvx512) {
    done = n / kBlock * kBlock;
    saturated = internal::QuantizeBlocksAvx512(x.data(), n / kBlock, p, codes.data());
  } else if (isa == Isa::kAvx2) {
    done = n / kBlock * kBlock;
    saturated = internal::QuantizeBlocksAvx2(x.data(), n / kBlock, p, codes.data());
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
  if (isa == Isa::kAvx512) {
    done = n / 16 * 16;
    if (done > 0) internal::MinMaxAvx512(x.data(), done, &lo, &hi, &non_finite);
  } else if (isa == Isa::kAvx2) {
    done = n / 8 * 8;
    if (done > 0) internal::MinMaxAvx2(x.data(), done, &lo, &hi, &non_finite);
  }
  for (int64_t i = done; i < n; ++i) {
    non_finite |= !std::isfinite(x[i]);
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (non_finite) {
    const auto bad = std::find_if(x.begin(), x.end(), [](float v) { return !std::isfinite(v); });
    return absl::InvalidArgumentError(absl::StrCat("cannot quantise: element ", bad - x.begin(),
                                                   " is ", *bad));
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

int64_t Quantize(std::span<const float> x, const QuantizeOptions& options,
                 std::span<int16_t> codes, Isa isa) {
  return QuantizeImpl(x, options, codes, isa);
}

}  // namespace muppet::kernels
