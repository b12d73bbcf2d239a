// Monotonic wall-clock seconds, for timing epochs and progress.
#ifndef MUPPET_BASE_CLOCK_H_
#define MUPPET_BASE_CLOCK_H_

#include <chrono>

namespace muppet {

// Seconds on the steady clock: only differences are meaningful.
inline double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace muppet

#endif  // MUPPET_BASE_CLOCK_H_
