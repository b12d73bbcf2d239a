#include "base/atomic_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace muppet {
namespace {

namespace fs = std::filesystem;

std::string TempDirectory(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/atomic_file_test/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  return ReplaceFile(path,
                     [&](int fd, const std::string& temp) { return WriteAll(fd, text, temp); });
}

// Only the target is left in the directory: no temporary file.
void ExpectOnly(const std::string& dir, const std::vector<std::string>& names) {
  std::vector<std::string> found;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    found.push_back(e.path().filename());
  }
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, names);
}

TEST(AtomicFileTest, CreatesAndReplacesRegularFiles) {
  const std::string dir = TempDirectory("replace");
  const std::string path = dir + "/out.json";
  EXPECT_TRUE(CheckReplaceableFile(path).ok());
  ExpectOnly(dir, {});
  ASSERT_TRUE(WriteText(path, "first").ok());
  ASSERT_TRUE(CheckReplaceableFile(path).ok());
  ASSERT_TRUE(WriteText(path, "second").ok());
  EXPECT_EQ(Contents(path), "second");
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::others_read);
  ExpectOnly(dir, {"out.json"});
}

TEST(AtomicFileTest, RefusesLinksAndSpecialFiles) {
  const std::string dir = TempDirectory("special");
  const std::string target = dir + "/target";
  ASSERT_TRUE(WriteText(target, "kept").ok());
  const std::string link = dir + "/link";
  fs::create_symlink(target, link);
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string sub = dir + "/sub";
  fs::create_directory(sub);
  for (const auto& [path, kind] :
       std::vector<std::pair<std::string, std::string>>{{link, "a symbolic link"},
                                                        {fifo, "a FIFO"},
                                                        {sub, "a directory"},
                                                        {"/dev/null", "a device"}}) {
    const absl::Status checked = CheckReplaceableFile(path);
    EXPECT_EQ(checked.code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_EQ(checked.message(),
              path + ": is " + kind + ", not a regular file; it is not replaced");
    EXPECT_EQ(WriteText(path, "new").code(), absl::StatusCode::kInvalidArgument) << path;
  }
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(Contents(target), "kept");
  EXPECT_TRUE(fs::is_fifo(fifo));
  ExpectOnly(dir, {"fifo", "link", "sub", "target"});
}

TEST(AtomicFileTest, MissingDirectoryNamesIt) {
  const absl::Status checked = CheckReplaceableFile("/nonexistent/dir/out");
  EXPECT_EQ(checked.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(checked.message(),
            "/nonexistent/dir/out: cannot create a file in /nonexistent/dir: No such file or "
            "directory");
  EXPECT_EQ(WriteText("/nonexistent/dir/out", "x").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(CheckReplaceableFile("").code(), absl::StatusCode::kInvalidArgument);
}

TEST(AtomicFileTest, FailedWriteLeavesTheOldFile) {
  const std::string dir = TempDirectory("failed");
  const std::string path = dir + "/out";
  ASSERT_TRUE(WriteText(path, "old").ok());
  const absl::Status s = ReplaceFile(path, [](int fd, const std::string& temp) {
    if (absl::Status w = WriteAll(fd, "partial", temp); !w.ok()) return w;
    return absl::DataLossError("source went away");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Contents(path), "old");
  ExpectOnly(dir, {"out"});
}

TEST(AtomicFileTest, RelativePathWritesInTheWorkingDirectory) {
  const std::string dir = TempDirectory("relative");
  const fs::path before = fs::current_path();
  fs::current_path(dir);
  EXPECT_TRUE(CheckReplaceableFile("rel.txt").ok());
  EXPECT_TRUE(WriteText("rel.txt", "here").ok());
  fs::current_path(before);
  EXPECT_EQ(Contents(dir + "/rel.txt"), "here");
  ExpectOnly(dir, {"rel.txt"});
}

}  // namespace
}  // namespace muppet
