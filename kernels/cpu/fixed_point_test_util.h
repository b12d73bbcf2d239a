// Helpers shared by the fixed-point kernel tests.
#ifndef MUPPET_KERNELS_CPU_FIXED_POINT_TEST_UTIL_H_
#define MUPPET_KERNELS_CPU_FIXED_POINT_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/common/conv_geometry.h"
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

// Calls f(x_index, y_index, w_index) for every term of the convolution g (the definition: each
// output is the sum of x[x_index] * w[w_index] over its terms), with channels-last indices.
template <typename F>
void ForEachTerm(const ConvGeometry& g, F f) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oy = 0; oy < g.out_h(); ++oy)
      for (int64_t ox = 0; ox < g.out_w(); ++ox)
        for (int64_t o = 0; o < g.o; ++o)
          for (int64_t ky = 0; ky < g.kernel; ++ky)
            for (int64_t kx = 0; kx < g.kernel; ++kx) {
              const int64_t iy = oy * g.stride - g.padding + ky,
                            ix = ox * g.stride - g.padding + kx;
              if (iy < 0 || ix < 0 || iy >= g.h || ix >= g.w) continue;
              for (int64_t c = 0; c < g.c; ++c) {
                f(((n * g.h + iy) * g.w + ix) * g.c + c,
                  ((n * g.out_h() + oy) * g.out_w() + ox) * g.o + o,
                  ((o * g.kernel + ky) * g.kernel + kx) * g.c + c);
              }
            }
}

}  // namespace muppet::kernels::testing

#endif  // MUPPET_KERNELS_CPU_FIXED_POINT_TEST_UTIL_H_
