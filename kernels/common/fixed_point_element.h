// The per-element arithmetic of MuPPET's quantiser (kernels/cpu/quantize.h describes the scheme),
// shared by the CPU kernels and the CUDA kernels: under nvcc every function is
// __host__ __device__, so each device computes the same codes for the same seed, stream and
// element index, and the CUDA kernels' arithmetic is the one the CPU tests check.
// - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), a
//   counter-based generator: the random bits of element i are a pure function of
//   (seed, stream, i), so results never depend on the thread count, vector width or device.
// - The scale exponent of a tensor's range, and one element's code.
// Only operations that are exact, or correctly rounded on every IEEE-754 device, are used.
#ifndef MUPPET_KERNELS_COMMON_FIXED_POINT_ELEMENT_H_
#define MUPPET_KERNELS_COMMON_FIXED_POINT_ELEMENT_H_

#include <math.h>

#include <cstdint>

#include "kernels/common/host_device.h"

namespace muppet::kernels {

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // Key schedule: golden ratio.
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1.

struct PhiloxWords {
  uint32_t word[4];
  friend constexpr bool operator==(const PhiloxWords&, const PhiloxWords&) = default;
};

// Philox4x32 with 10 rounds of `counter` under the key (k0, k1).
MUPPET_HOST_DEVICE constexpr PhiloxWords Philox4x32(PhiloxWords c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{kPhiloxM0} * c.word[0];
    const uint64_t p1 = uint64_t{kPhiloxM1} * c.word[2];
    c = {{static_cast<uint32_t>(p1 >> 32) ^ c.word[1] ^ k0, static_cast<uint32_t>(p1),
          static_cast<uint32_t>(p0 >> 32) ^ c.word[3] ^ k1, static_cast<uint32_t>(p0)}};
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return c;
}

// The layout of the random bits serves 16-lane vectors without shuffles: elements form blocks
// of 128; lane l = i % 16 of block b = i / 128 owns the Philox counter (b * 16 + l, stream),
// whose four 32-bit outputs split into eight 16-bit halves, one for each of the block's eight
// 16-element vectors (j = (i % 128) / 16 takes word j / 2, low half for even j).
//
// The outputs of counter `counter` (b * 16 + l) under `seed` and `stream`: the draws of elements
// b * 128 + j * 16 + l, j in [0, 8) (CounterDraw).
MUPPET_HOST_DEVICE constexpr PhiloxWords CounterWords(uint64_t seed, uint64_t stream,
                                                      uint64_t counter) {
  return Philox4x32({{static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                      static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)}},
                    static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Draw j in [0, 8) of a counter's outputs: 16 bits.
MUPPET_HOST_DEVICE constexpr uint32_t CounterDraw(const PhiloxWords& words, int j) {
  return (words.word[j / 2] >> (16 * (j % 2))) & 0xFFFFu;
}

// The 16 random bits that stochastic rounding uses for element `i` of a tensor, under `seed` and
// `stream` (distinct streams give independent bits for the same seed).
MUPPET_HOST_DEVICE constexpr uint32_t StochasticBits(uint64_t seed, uint64_t stream, uint64_t i) {
  return CounterDraw(CounterWords(seed, stream, (i / 128) * 16 + i % 16),
                     static_cast<int>((i % 128) / 16));
}

// The exponent s of a tensor whose elements lie in [min, max], for word length `word_length` in
// [2, 16]: s = floor(log2(min(M+ / max, M- / min))) with M+ = 2^(WL-1) - 0.5 and
// M- = -2^(WL-1) - 0.5 (terms with max <= 0 or min >= 0 left out; 0 for an all-zero tensor),
// clamped to [-149, 127] so that 2^s is a float.
MUPPET_HOST_DEVICE inline int ScaleExponentOf(float min, float max, int word_length) {
  const double half_range = ldexp(1.0, word_length - 1);
  const double m_plus = half_range - 0.5, m_minus = -half_range - 0.5;
  bool bounded = false;
  double ratio = 0;
  if (max > 0) {
    ratio = m_plus / max;
    bounded = true;
  }
  if (min < 0 && (!bounded || m_minus / min < ratio)) {
    ratio = m_minus / min;
    bounded = true;
  }
  if (!bounded) return 0;  // All zero.
  int e = 0;
  frexp(ratio, &e);  // ratio = m * 2^e with m in [0.5, 1): floor(log2(ratio)) = e - 1.
  return e - 1 < -149 ? -149 : (e - 1 > 127 ? 127 : e - 1);
}

// What quantising one tensor needs besides its elements.
struct QuantizeParams {
  float scale;  // 2^s.
  float lo;     // -2^(WL-1).
  float hi;     // 2^(WL-1) - 1.
  bool stochastic;
  uint64_t seed;
  uint64_t stream;
};

// The parameters for codes of `word_length` bits at exponent s = `exponent` (2^s exact for s in
// [-149, 127], denormals included).
MUPPET_HOST_DEVICE inline QuantizeParams GridParams(int word_length, int exponent, bool stochastic,
                                                    uint64_t seed, uint64_t stream) {
  const float half = ldexpf(1.0f, word_length - 1);
  return {.scale = ldexpf(1.0f, exponent),
          .lo = -half,
          .hi = half - 1.0f,
          .stochastic = stochastic,
          .seed = seed,
          .stream = stream};
}

// The code of an element whose random bits are `bits` (StochasticBits; unused by nearest
// rounding), as a float in [lo, hi], and whether it saturated. x must be finite.
MUPPET_HOST_DEVICE inline float QuantizeElementWith(float x, uint32_t bits, const QuantizeParams& p,
                                                    bool* saturated) {
  const float v = x * p.scale;  // Exact: a power-of-two scale.
  float q;
  if (p.stochastic) {
    const float f = floorf(v);
    const float frac = v - f;  // Exact (Sterbenz), in [0, 1).
    q = static_cast<float>(bits) < frac * 65536.0f ? f + 1.0f : f;
  } else {
    const float t = truncf(v);
    const float d = v - t;  // Exact, in (-1, 1).
    q = d >= 0.5f ? t + 1.0f : (d <= -0.5f ? t - 1.0f : t);
  }
  *saturated = q > p.hi || q < p.lo;
  return q < p.lo ? p.lo : (q > p.hi ? p.hi : q);
}

// Element i's code: the reference every vector and device path must match bit for bit.
MUPPET_HOST_DEVICE inline float QuantizeElement(float x, uint64_t i, const QuantizeParams& p,
                                                bool* saturated) {
  return QuantizeElementWith(x, p.stochastic ? StochasticBits(p.seed, p.stream, i) : 0, p,
                             saturated);
}

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_COMMON_FIXED_POINT_ELEMENT_H_
