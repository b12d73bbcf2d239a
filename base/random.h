// Counter-based randomness for the training runtime: a value is a pure function of (key, counter), so
// results never depend on thread count or scheduling.
#ifndef MUPPET_BASE_RANDOM_H_
#define MUPPET_BASE_RANDOM_H_

#include <cmath>
#include <cstdint>

namespace muppet {

// SplitMix64's finaliser over key and counter: a strong 64-bit mix, cheap enough per element.
inline uint64_t CounterHash(uint64_t key, uint64_t counter) {
  uint64_t z = key + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Maps 64 random bits to a double uniform in [0, 1).
inline double UniformFromBits(uint64_t bits) { return (bits >> 11) * 0x1.0p-53; }

// A seeded sequence of draws (for initialisation, shuffling, augmentation).
class Rng {
 public:
  explicit Rng(uint64_t seed) : seed_(seed) {}
  uint64_t Next() { return CounterHash(seed_, counter_++); }
  double Uniform() { return UniformFromBits(Next()); }
  // Uniform integer in [0, n).
  uint64_t Below(uint64_t n) { return static_cast<uint64_t>(Uniform() * n); }
  // Standard normal by Box-Muller, portable (unlike std::normal_distribution).
  double Normal() {
    const double u1 = 1.0 - Uniform();  // In (0, 1]: log is finite.
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

}  // namespace muppet

#endif  // MUPPET_BASE_RANDOM_H_
