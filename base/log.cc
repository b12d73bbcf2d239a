#include "base/log.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace muppet {
namespace {

std::string Quoted(absl::string_view value) {
  if (!value.empty() && value.find_first_of(" \"=\\\n\t") == absl::string_view::npos) {
    return std::string(value);
  }
  return absl::StrCat("\"",
                      absl::StrReplaceAll(value, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}}),
                      "\"");
}

}  // namespace

std::string Logger::Format(absl::string_view level, absl::string_view event,
                           std::initializer_list<LogField> fields) {
  std::string line = absl::StrCat("level=", level, " event=", Quoted(event));
  for (const auto& [key, value] : fields) absl::StrAppend(&line, " ", key, "=", Quoted(value));
  return line;
}

void Logger::Info(absl::string_view event, std::initializer_list<LogField> fields) {
  Write("info", event, fields);
}

void Logger::Warn(absl::string_view event, std::initializer_list<LogField> fields) {
  Write("warn", event, fields);
}

void Logger::Write(absl::string_view level, absl::string_view event,
                   std::initializer_list<LogField> fields) {
  const std::string time =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  const std::string line = absl::StrCat("time=", time, " ", Format(level, event, fields), "\n");
  absl::MutexLock lock(&mu_);
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
}

}  // namespace muppet
