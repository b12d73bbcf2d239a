#include "base/cli.h"

#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CliTest, DashedFlagsBecomeUnderscoresUpToADoubleDash) {
  std::vector<std::string> storage;
  char a0[] = "prog", a1[] = "--batch-size=8", a2[] = "--dry-run", a3[] = "--", a4[] = "--x-y";
  char* argv[] = {a0, a1, a2, a3, a4};
  std::vector<char*> out = DashedFlagsToUnderscores(5, argv, storage);
  EXPECT_EQ(std::string(out[1]), "--batch_size=8");
  EXPECT_EQ(std::string(out[2]), "--dry_run");
  EXPECT_EQ(std::string(out[4]), "--x-y");
}

TEST(CliTest, ConfigFileFlagsComeBeforeTheCommandLine) {
  const std::string path = WriteFile("muppetd.conf",
                                     "# muppetd\n\nlisten = 0.0.0.0:7070\n--db=/var/lib/m.db\n"
                                     "  lease=20s  \n");
  std::string arg0 = "muppetd", arg1 = "--config=" + path, arg2 = "--lease=30s";
  char* argv[] = {arg0.data(), arg1.data(), arg2.data()};
  absl::StatusOr<std::vector<std::string>> args = WithConfigFile(3, argv);
  ASSERT_TRUE(args.ok()) << args.status();
  // The command line's --lease comes last, so it wins.
  EXPECT_THAT(*args, ElementsAre("muppetd", "--listen=0.0.0.0:7070", "--db=/var/lib/m.db",
                                 "--lease=20s", "--lease=30s"));
}

TEST(CliTest, ConfigFileErrorsNameTheFileAndLine) {
  const std::string path = WriteFile("bad.conf", "listen = x\njust words\n");
  EXPECT_THAT(std::string(ReadConfigFlags(path).status().message()),
              HasSubstr("bad.conf:2: expected \"name = value\""));
  EXPECT_THAT(std::string(ReadConfigFlags("/nonexistent.conf").status().message()),
              HasSubstr("--config: cannot read /nonexistent.conf"));
}

TEST(CliTest, TokenFiles) {
  EXPECT_EQ(*ReadTokenFile(""), "");
  EXPECT_EQ(*ReadTokenFile(WriteFile("token", "  s3cret\n")), "s3cret");
  EXPECT_THAT(std::string(ReadTokenFile(WriteFile("empty", "\n")).status().message()),
              HasSubstr("--token-file: cannot read a token"));
  EXPECT_FALSE(ReadTokenFile("/nonexistent/token").ok());
}

}  // namespace
}  // namespace muppet
