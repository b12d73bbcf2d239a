// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// counter-based generator, so the random bits of element i are a pure function of
// (seed, stream, i) and results never depend on the thread count or vector width.
#ifndef MUPPET_KERNELS_CPU_PHILOX_H_
#define MUPPET_KERNELS_CPU_PHILOX_H_

#include <array>
#include <cstdint>

namespace muppet::kernels {

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // Key schedule: golden ratio.
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1.

// Philox4x32 with 10 rounds of `counter` under `key`.
constexpr std::array<uint32_t, 4> Philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{kPhiloxM0} * c[0];
    const uint64_t p1 = uint64_t{kPhiloxM1} * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k = {k[0] + kPhiloxW0, k[1] + kPhiloxW1};
  }
  return c;
}

// The 16 random bits that stochastic rounding uses for element `i` of a tensor, under `seed` and
// `stream` (distinct streams give independent bits for the same seed).
//
// The layout serves 16-lane vectors without shuffles: elements form blocks of 128; lane
// l = i % 16 of block b = i / 128 owns the Philox counter (b * 16 + l, stream), whose four 32-bit
// outputs split into eight 16-bit halves, one for each of the block's eight 16-element vectors
// (j = (i % 128) / 16 takes word j / 2, low half for even j).
constexpr uint32_t StochasticBits(uint64_t seed, uint64_t stream, uint64_t i) {
  const uint64_t counter = (i / 128) * 16 + i % 16;
  const uint64_t j = (i % 128) / 16;
  const std::array<uint32_t, 4> words =
      Philox4x32({static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                  static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)},
                 {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  return (words[j / 2] >> (16 * (j % 2))) & 0xFFFFu;
}

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_PHILOX_H_
