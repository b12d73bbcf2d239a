// Structured logs: one logfmt line per event, for example
//   time=2026-11-29T04:16:15.123Z level=info event=job_state job=job-0123 from=queued to=scheduled
// Values with spaces, quotes or '=' are quoted. Thread-safe.
#ifndef MUPPET_BASE_LOG_H_
#define MUPPET_BASE_LOG_H_

#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace muppet {

using LogField = std::pair<absl::string_view, std::string>;

class Logger {
 public:
  // Writes to `out`, which must outlive the logger.
  explicit Logger(std::FILE* out) : out_(out) {}

  // Logs `event` at level info or warn, with `fields` in order.
  void Info(absl::string_view event, std::initializer_list<LogField> fields = {});
  void Warn(absl::string_view event, std::initializer_list<LogField> fields = {});

  // The line Info would write, without the time (for tests).
  static std::string Format(absl::string_view level, absl::string_view event,
                            std::initializer_list<LogField> fields);

 private:
  void Write(absl::string_view level, absl::string_view event,
             std::initializer_list<LogField> fields);

  absl::Mutex mu_;
  std::FILE* const out_;
};

}  // namespace muppet

#endif  // MUPPET_BASE_LOG_H_
