// Time for muppet: monotonic seconds for timing work, and an injectable wall clock for logic that
// tests must drive without sleeping (the coordinator's leases), in the manner of leveldb's Env.
#ifndef MUPPET_BASE_CLOCK_H_
#define MUPPET_BASE_CLOCK_H_

#include <chrono>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace muppet {

// Seconds on the steady clock: only differences are meaningful.
inline double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Wall-clock time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // The system's clock; never destroyed.
  static Clock* Real();
};

// A clock that moves only when a test moves it.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

inline Clock* Clock::Real() {
  class RealClock : public Clock {
   public:
    absl::Time Now() const override { return absl::Now(); }
  };
  static Clock* const clock = new RealClock();
  return clock;
}

}  // namespace muppet

#endif  // MUPPET_BASE_CLOCK_H_
