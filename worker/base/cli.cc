#include "worker/base/cli.h"

#include <fstream>
#include <sstream>

#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "proto/version.h"

namespace muppet {

void SetVersionFlag(const std::string& program) {
  absl::FlagsUsageConfig config;
  config.version_string = [program] { return absl::StrCat(program, " ", kVersion, "\n"); };
  absl::SetFlagsUsageConfig(config);
}

absl::StatusOr<std::vector<std::string>> ReadConfigFlags(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--config: cannot read ", path));
  std::vector<std::string> flags;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    absl::ConsumePrefix(&text, "--");
    const size_t eq = text.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": expected \"name = value\", got \"", line, "\""));
    }
    flags.push_back(absl::StrCat("--", absl::StripAsciiWhitespace(text.substr(0, eq)), "=",
                                 absl::StripAsciiWhitespace(text.substr(eq + 1))));
  }
  return flags;
}

absl::StatusOr<std::vector<std::string>> WithConfigFile(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--") break;
    if (args[i].rfind("--config=", 0) != 0) continue;
    absl::StatusOr<std::vector<std::string>> flags = ReadConfigFlags(args[i].substr(9));
    if (!flags.ok()) return flags.status();
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    args.insert(args.begin() + 1, flags->begin(), flags->end());
    break;
  }
  return args;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  if (path.empty()) return std::string();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string token(absl::StripAsciiWhitespace(text.str()));
  if (!in || token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--token-file: cannot read a token from ", path));
  }
  return token;
}

}  // namespace muppet
