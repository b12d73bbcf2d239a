// Helpers shared by the fixed-point kernel tests.
#ifndef MUPPET_KERNELS_CPU_FIXED_POINT_TEST_UTIL_H_
#define MUPPET_KERNELS_CPU_FIXED_POINT_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/fixed_point.h"

namespace muppet::kernels::testing {

// n draws from N(0, 1), reproducible from `seed`.
inline std::vector<float> RandomFloats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// The values code * 2^-s, in double, of x quantised as `operand` of a step of `o`: on the stream
// step * 3 + operand, as fixed_point.h documents (spelt out here, not taken from the library).
inline std::vector<double> DequantizedOperand(const std::vector<float>& x,
                                              const FixedPointOptions& o, Operand operand) {
  const Quantized q = *QuantizeTensor(x, o.word_length, o.rounding, o.seed,
                                      o.step * 3 + static_cast<uint64_t>(operand));
  std::vector<double> v(x.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double code =
        o.word_length <= 8 ? static_cast<double>(q.s8[i]) : static_cast<double>(q.s16[i]);
    v[i] = std::ldexp(code, -q.exponent);
  }
  return v;
}

}  // namespace muppet::kernels::testing

#endif  // MUPPET_KERNELS_CPU_FIXED_POINT_TEST_UTIL_H_
