// MuPPET's dynamic fixed-point quantiser (block floating point): one power-of-two scale per
// tensor, codes of a given word length WL (sign included), stochastic or nearest rounding, and
// saturation to the signed range, counted. See docs/ALGORITHM.md, section 1.
//
// For WL bits, with M+ = 2^(WL-1) - 1 + 0.5 and M- = -2^(WL-1) - 0.5, the exponent is
//   s = floor(log2(min(M+ / max(x), M- / min(x))))   (terms with max <= 0 or min >= 0 left out;
//                                                      s = 0 for an all-zero tensor)
// and code[i] = saturate(round(x[i] * 2^s)), so x[i] ~= code[i] * 2^-s.
//
// Stochastic rounding is floor(v) + [r < frac(v) * 2^16] with r the 16 bits Philox gives element
// i (kernels/common/fixed_point_element.h, whose arithmetic the CUDA quantiser shares): unbiased to
// within 2^-16 of a unit in the last place, and a pure function of (seed, stream, i), so every
// instruction set and thread count produces identical codes. Nearest rounding rounds halves away
// from zero. Codes are int8 for WL <= 8 and int16 above.
#ifndef MUPPET_KERNELS_CPU_QUANTIZE_H_
#define MUPPET_KERNELS_CPU_QUANTIZE_H_

#include <cmath>
#include <cstdint>
#include <optional>
#include <span>

#include "absl/status/statusor.h"
#include "kernels/cpu/isa.h"

namespace muppet::kernels {

enum class Rounding { kStochastic, kNearest };

struct Range {
  float min = 0;
  float max = 0;
};

// Elements a producer writes before it scans them, or a quantiser computes before it converts them:
// 16 KB of floats, which stay in L1.
inline constexpr int64_t kInCacheElements = 4096;

// A tensor's range gathered by the code that writes it, a piece at a time while each piece is
// still in cache, so that quantising the tensor needs no scan of its own. Min and max are exact,
// so pieces may be added in any order and on any thread (one RangeScan each, then Merge).
struct RangeScan {
  float min = INFINITY;
  float max = -INFINITY;
  bool non_finite = false;  // An element was NaN or infinite.

  // Lowers min and raises max over x[0, n).
  void Add(const float* x, int64_t n, Isa isa = ActiveIsa());
  void Merge(const RangeScan& other);
  // MinMax of every element added, or nullopt if one was not finite or none was added (a
  // quantiser given nullopt scans the tensor itself, and names the offending element).
  std::optional<Range> range() const;
};

// The smallest and largest element of a non-empty `x`. INVALID_ARGUMENT, naming the index of the
// first NaN or infinity, if `x` has one: quantising it would produce garbage.
absl::StatusOr<Range> MinMax(std::span<const float> x, Isa isa = ActiveIsa());

// The exponent s above for word length `word_length` in [2, 16], clamped to [-149, 127] so that
// 2^s is a float (a tensor whose largest magnitude is below 2^-112 gets codes shorter than WL).
int ScaleExponent(Range range, int word_length);

struct QuantizeOptions {
  int word_length = 8;  // [2, 8] for int8 codes, [2, 16] for int16.
  int exponent = 0;     // s: codes are x * 2^s.
  Rounding rounding = Rounding::kStochastic;
  uint64_t seed = 0;  // With `stream`, selects the stochastic-rounding bits.
  uint64_t stream = 0;
};

// Writes code[i] = saturate(round(x[i] * 2^s)) for every i and returns how many codes saturated.
// `codes` must have x.size() elements. x must be finite (see MinMax).
int64_t Quantize(std::span<const float> x, const QuantizeOptions& options, std::span<int8_t> codes,
                 Isa isa = ActiveIsa());
int64_t Quantize(std::span<const float> x, const QuantizeOptions& options, std::span<int16_t> codes,
                 Isa isa = ActiveIsa());

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_QUANTIZE_H_
