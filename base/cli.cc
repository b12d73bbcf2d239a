#include "base/cli.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/internal/parse.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "proto/version.h"

namespace muppet {
namespace {

// absl's parser (2022) ends the process with status 1 on a bad flag, where muppet's binaries
// document 2 for usage errors. While it parses, this exit handler makes that exit a 2.
std::atomic<bool> parsing_flags{false};

void ExitTwoWhileParsing() {
  if (!parsing_flags.load()) return;
  std::fflush(nullptr);
  std::_Exit(kUsageExitCode);
}

// absl::ParseCommandLine, but a bad flag exits with kUsageExitCode and --help, --helpfull and
// --version print and exit with 0 (absl exits 1 after help).
std::vector<char*> ParseFlags(int argc, char** argv) {
  static const bool registered = std::atexit(ExitTwoWhileParsing) == 0;
  (void)registered;
  parsing_flags = true;
  std::vector<char*> parsed = absl::flags_internal::ParseCommandLineImpl(
      argc, argv, absl::flags_internal::ArgvListAction::kRemoveParsedArgs,
      absl::flags_internal::UsageFlagsAction::kIgnoreUsage,
      absl::flags_internal::OnUndefinedFlag::kAbortIfUndefined);
  parsing_flags = false;
  if (absl::flags_internal::HandleUsageFlags(std::cout, absl::ProgramUsageMessage()) != -1) {
    std::cout.flush();
    std::exit(0);
  }
  return parsed;
}

}  // namespace

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

absl::StatusOr<std::vector<std::string>> ParseMuppetCommandLine(int argc, char** argv,
                                                                const CommandLine& spec) {
  absl::FlagsUsageConfig config;
  config.version_string = [program = spec.program] {
    return absl::StrCat(program, " ", kVersion, "\n");
  };
  // --help lists muppet's flags wherever they are defined (the training flags live in
  // worker/train/train_flags.cc), not only the main file's; absl's own stay in --helpfull.
  config.contains_help_flags = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/") && !absl::StartsWith(file, "/");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(spec.usage);
  std::vector<std::string> raw(argv, argv + argc);
  if (spec.config_file) {
    absl::StatusOr<std::vector<std::string>> with_config = WithConfigFile(argc, argv);
    if (!with_config.ok()) return with_config.status();
    raw = *std::move(with_config);
  }
  std::vector<char*> raw_args;
  for (std::string& a : raw) raw_args.push_back(a.data());
  std::vector<std::string> storage;
  std::vector<char*> args =
      DashedFlagsToUnderscores(static_cast<int>(raw_args.size()), raw_args.data(), storage);
  const std::vector<char*> parsed = ParseFlags(static_cast<int>(args.size()), args.data());
  std::vector<std::string> positional(parsed.begin() + 1, parsed.end());
  if (!spec.positional && !positional.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", positional[0], "\"; see --help"));
  }
  return positional;
}

}  // namespace muppet
