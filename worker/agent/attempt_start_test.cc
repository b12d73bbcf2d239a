// Which offered checkpoint a restarted attempt may resume from, and which failures a restart
// cannot mend.
#include "worker/agent/attempt_start.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet {
namespace {

using ::testing::HasSubstr;

// A checkpoint written as rank 0 writes one, and what the coordinator recorded of it.
v1::CheckpointInfo Written(const std::string& dir, uint32_t next_epoch) {
  TrainingCheckpoint c;
  c.state.set_model("lenet5");
  c.state.set_next_epoch(next_epoch);
  absl::StatusOr<CheckpointInfo> info = CheckpointDirectory(dir, 2).Save(c);
  EXPECT_TRUE(info.ok()) << info.status();
  v1::CheckpointInfo offered;
  offered.set_path(info->path);
  offered.set_epoch(info->next_epoch);
  offered.set_size_bytes(static_cast<uint64_t>(info->bytes));
  return offered;
}

TEST(LoadOfferedTest, TakesTheRecordedFileAndRefusesAnyOtherNamingIt) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/offered");
  std::filesystem::remove_all(dir);
  const v1::CheckpointInfo offered = Written(dir, 3);
  absl::StatusOr<LoadedCheckpoint> loaded = LoadOffered(offered);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->path, offered.path());
  EXPECT_EQ(loaded->checkpoint.state.next_epoch(), 3u);

  v1::CheckpointInfo later = offered;
  later.set_epoch(4);  // Another run's file at that path.
  EXPECT_EQ(LoadOffered(later).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(LoadOffered(later).status().message()),
              HasSubstr(offered.path() + ": section \"run\": resumes at epoch 3, but the "
                                         "checkpoint recorded there at epoch 4"));

  std::filesystem::resize_file(offered.path(), offered.size_bytes() - 1);
  EXPECT_THAT(std::string(LoadOffered(offered).status().message()),
              HasSubstr(absl::StrCat(offered.path(), ": ", offered.size_bytes() - 1,
                                     " bytes, but the checkpoint recorded there had ",
                                     offered.size_bytes(), " (truncated, or another file)")));

  std::filesystem::remove(offered.path());
  EXPECT_THAT(std::string(LoadOffered(offered).status().message()),
              HasSubstr(offered.path() + ": cannot be read here"));
}

TEST(IsPermanentFailureTest, OnlyTheSpecsOwnFaultsAreNotRestarted) {
  EXPECT_TRUE(IsPermanentFailure(absl::InvalidArgumentError("cannot quantise: element 3 is nan")));
  EXPECT_TRUE(IsPermanentFailure(absl::FailedPreconditionError("a checkpoint of another spec")));
  EXPECT_FALSE(IsPermanentFailure(absl::UnavailableError("rank 1 was lost")));
  EXPECT_FALSE(IsPermanentFailure(absl::ResourceExhaustedError("needs more memory")));
  EXPECT_FALSE(IsPermanentFailure(absl::NotFoundError("no such dataset file here")));
}

}  // namespace
}  // namespace muppet
