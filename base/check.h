// MUPPET_CHECK: aborts with a message when an internal invariant (a programming error, never bad
// user input) is violated. Bad input is reported with absl::Status instead.
#ifndef MUPPET_BASE_CHECK_H_
#define MUPPET_BASE_CHECK_H_

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace muppet::internal {

// Collects the streamed message and aborts when destroyed.
class CheckFailure {
 public:
  CheckFailure(const char* condition, const char* file, int line) {
    stream_ << file << ":" << line << ": check failed: " << condition << " ";
  }
  [[noreturn]] ~CheckFailure() {
    std::cerr << stream_.str() << std::endl;
    std::abort();
  }
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

}  // namespace muppet::internal

#define MUPPET_CHECK(condition)                                                    \
  if (__builtin_expect(!!(condition), 1)) {                                        \
  } else                                                                           \
    ::muppet::internal::CheckFailure(#condition, __FILE__, __LINE__).stream()

#endif  // MUPPET_BASE_CHECK_H_
