// Command-line conventions shared by muppet's binaries.
#ifndef MUPPET_BASE_CLI_H_
#define MUPPET_BASE_CLI_H_

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace muppet {

// Rewrites "--batch-size=8" as "--batch_size=8" (and "--batch-size" alike) so that users type
// the dashed flag names muppet documents while absl's flag names stay C++ identifiers. Stops at
// a bare "--". Returns the rewritten arguments; `storage` owns their text.
inline std::vector<char*> DashedFlagsToUnderscores(int argc, char** argv,
                                                   std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  for (size_t i = 1; i < storage.size(); ++i) {
    std::string& arg = storage[i];
    if (arg == "--") break;
    if (arg.rfind("-", 0) != 0) continue;
    const size_t name_end = std::min(arg.find('='), arg.size());
    for (size_t k = arg.find_first_not_of('-'); k < name_end; ++k) {
      if (arg[k] == '-') arg[k] = '_';
    }
  }
  std::vector<char*> result;
  for (std::string& s : storage) result.push_back(s.data());
  return result;
}

// How a binary's command line is parsed.
struct CommandLine {
  std::string program;          // Its name, for --version.
  std::string usage;            // The text --help prints first.
  bool config_file = false;     // Accept --config=FILE (ReadConfigFlags) before the flags.
  bool positional = false;      // Accept positional arguments.
};

// The exit status of a binary given a bad command line.
inline constexpr int kUsageExitCode = 2;

// Parses argv the muppet way: --version prints "<program> <version>", dashed flag names,
// --config=FILE when allowed. Returns the positional arguments (without argv[0]). Errors: the
// config file, or a positional argument where none is allowed. Exits with kUsageExitCode on a
// bad flag (an unknown name, a value that does not parse), and with 0 after --help, --helpfull
// or --version.
absl::StatusOr<std::vector<std::string>> ParseMuppetCommandLine(int argc, char** argv,
                                                                const CommandLine& spec);

// Reads a config file of flags: one "name = value" (or "--name=value") per line; blank lines
// and lines starting with '#' are ignored. Returns them as "--name=value" arguments, to be
// placed before the command line's own so that those override the file. Errors name the file
// and line.
absl::StatusOr<std::vector<std::string>> ReadConfigFlags(const std::string& path);

// Runs ReadConfigFlags on the file named by a "--config=FILE" argument, if any, and returns
// the arguments with the file's flags inserted after argv[0] (and --config removed).
absl::StatusOr<std::vector<std::string>> WithConfigFile(int argc, char** argv);

// The bearer token in the file named by --token-file, whitespace stripped; "" when `path` is
// empty. Errors name the flag and the file.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace muppet

#endif  // MUPPET_BASE_CLI_H_
