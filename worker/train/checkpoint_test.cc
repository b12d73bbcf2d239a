#include "worker/train/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "absl/strings/str_cat.h"
#include "base/crc32c.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/train/checkpoint_file.h"
#include "worker/train/trainer.h"

namespace muppet {
namespace {

using ::testing::HasSubstr;

std::string TempDir(const std::string& name) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TrainingCheckpoint RandomCheckpoint(uint32_t next_epoch) {
  std::mt19937 rng(next_epoch);
  std::normal_distribution<float> normal;
  TrainingCheckpoint c;
  c.state.set_model("lenet5");
  c.state.set_next_epoch(next_epoch);
  internal::TensorInfo& w = *c.state.add_parameters();
  w.set_name("conv.weight");
  for (int64_t d : {4, 3, 3, 2}) w.add_shape(d);
  internal::TensorInfo& b = *c.state.add_buffers();
  b.set_name("bn.running_mean");
  b.add_shape(5);
  for (int i = 0; i < 72; ++i) {
    c.parameters.push_back(normal(rng));
    c.momentum.push_back(normal(rng));
    c.gradient_window.push_back(normal(rng));
  }
  for (int i = 0; i < 5; ++i) c.buffers.push_back(normal(rng));
  return c;
}

TEST(CheckpointFileTest, RoundTripsEverySection) {
  const std::string path = TempDir("roundtrip") + "/c.muppet";
  const TrainingCheckpoint c = RandomCheckpoint(3);
  ASSERT_TRUE(WriteTrainingCheckpoint(path, c).ok());
  absl::StatusOr<TrainingCheckpoint> back = ReadTrainingCheckpoint(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->state.SerializeAsString(), c.state.SerializeAsString());
  EXPECT_EQ(back->parameters, c.parameters);
  EXPECT_EQ(back->momentum, c.momentum);
  EXPECT_EQ(back->buffers, c.buffers);
  EXPECT_EQ(back->gradient_window, c.gradient_window);
  // No temporary file is left beside it.
  std::vector<std::string> files;
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    files.push_back(e.path().filename().string());
  }
  EXPECT_EQ(files, std::vector<std::string>{"c.muppet"});
}

// Every truncation and every flipped byte is caught, and the error names the file and, past
// the header, the section the damage is in.
TEST(CheckpointFileTest, TruncationAndCorruptionNameTheFileAndSection) {
  const std::string dir = TempDir("damage");
  const std::string good = dir + "/good.muppet", bad = dir + "/bad.muppet";
  ASSERT_TRUE(WriteTrainingCheckpoint(good, RandomCheckpoint(1)).ok());
  const std::string bytes = ReadBytes(good);
  // Where each section's bytes and CRC lie, from the layout in checkpoint_file.h.
  struct Span {
    std::string name;
    size_t begin, end;
  };
  std::vector<Span> payloads;
  size_t offset = 20;
  for (const char* name : {"run", "parameters", "momentum", "buffers", "gradient_window"}) {
    uint64_t size = 0;
    std::memcpy(&size, bytes.data() + offset + 4 + std::strlen(name), 8);
    const size_t begin = offset + 4 + std::strlen(name) + 8;
    payloads.push_back({name, begin, begin + size + 4});
    offset = begin + size + 4;
  }
  ASSERT_EQ(offset, bytes.size());
  for (size_t at = 0; at < bytes.size(); at += 5) {
    WriteBytes(bad, bytes.substr(0, at));
    absl::StatusOr<TrainingCheckpoint> truncated = ReadTrainingCheckpoint(bad);
    ASSERT_FALSE(truncated.ok()) << "truncated at " << at;
    EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(truncated.status().message()), HasSubstr(bad));

    std::string flipped = bytes;
    flipped[at] ^= 0x10;
    WriteBytes(bad, flipped);
    absl::StatusOr<TrainingCheckpoint> corrupt = ReadTrainingCheckpoint(bad);
    ASSERT_FALSE(corrupt.ok()) << "byte " << at;
    const std::string message(corrupt.status().message());
    EXPECT_THAT(message, HasSubstr(bad));
    // Damage to a section's bytes or CRC names it; a damaged name or length is reported as the
    // reader then sees it.
    for (const Span& p : payloads) {
      if (at >= p.begin && at < p.end) {
        EXPECT_THAT(message, HasSubstr(absl::StrCat("section \"", p.name, "\": CRC32C mismatch")))
            << "byte " << at;
      }
    }
  }
}

TEST(CheckpointFileTest, WrongVersionMagicAndTrailingBytes) {
  const std::string dir = TempDir("kinds");
  const std::string path = dir + "/c.muppet";
  ASSERT_TRUE(WriteCheckpointFile(path, {{"run", "x"}}).ok());
  std::string bytes = ReadBytes(path);
  // Version 2 with a header CRC that matches it: a well-formed file of another format.
  std::string v2 = bytes;
  v2[8] = 2;
  const uint32_t crc = Crc32c(std::string_view(v2).substr(0, 16));
  std::memcpy(v2.data() + 16, &crc, 4);
  WriteBytes(path, v2);
  absl::StatusOr<std::vector<CheckpointSection>> r = ReadCheckpointFile(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("format version 2"));

  WriteBytes(path, "PK\x03\x04 a zip file");
  EXPECT_THAT(std::string(ReadCheckpointFile(path).status().message()),
              HasSubstr("not a muppet checkpoint"));
  WriteBytes(path, bytes + "junk");
  EXPECT_THAT(std::string(ReadCheckpointFile(path).status().message()),
              HasSubstr("4 unexpected bytes after the last section"));
  EXPECT_EQ(ReadCheckpointFile(dir + "/none.muppet").status().code(), absl::StatusCode::kNotFound);
}

TEST(CheckpointFileTest, MissingOrWronglySizedSectionsAreNamed) {
  const std::string path = TempDir("sizes") + "/c.muppet";
  const TrainingCheckpoint c = RandomCheckpoint(1);
  ASSERT_TRUE(WriteCheckpointFile(path, {{"run", c.state.SerializeAsString()},
                                         {"parameters", std::string(72 * 4, '\0')},
                                         {"momentum", std::string(71 * 4, '\0')}})
                  .ok());
  EXPECT_THAT(std::string(ReadTrainingCheckpoint(path).status().message()),
              HasSubstr("section \"momentum\" holds 284 bytes; section \"run\" lists 72 values"));
  ASSERT_TRUE(WriteCheckpointFile(path, {{"run", c.state.SerializeAsString()},
                                         {"parameters", std::string(72 * 4, '\0')}})
                  .ok());
  EXPECT_THAT(std::string(ReadTrainingCheckpoint(path).status().message()),
              HasSubstr("section \"momentum\" is missing"));
}

TEST(CheckpointFileTest, ImpossibleShapesAreDataLoss) {
  const std::string path = TempDir("shapes") + "/c.muppet";
  // 2^62 floats are 2^64 bytes, which wrap to 0: empty sections must not pass for them.
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{int64_t{1} << 62}, {-4, -2}, {1 << 30, 1 << 30, 4}}) {
    internal::TrainingState state;
    internal::TensorInfo& t = *state.add_parameters();
    t.set_name("conv1.weight");
    for (int64_t d : shape) t.add_shape(d);
    ASSERT_TRUE(WriteCheckpointFile(path, {{"run", state.SerializeAsString()},
                                           {"parameters", ""},
                                           {"momentum", ""},
                                           {"buffers", ""},
                                           {"gradient_window", ""}})
                    .ok());
    const absl::Status s = ReadTrainingCheckpoint(path).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(s.message(),
              path + ": section \"run\": tensor \"conv1.weight\" has an impossible shape");
  }
}

TEST(CheckpointDirectoryTest, KeepsTheNewestAndFallsBackPastACorruptOne) {
  const std::string dir = TempDir("directory") + "/job";
  const CheckpointDirectory checkpoints(dir, 2);
  EXPECT_EQ(checkpoints.LoadLatest().status().code(), absl::StatusCode::kNotFound);
  std::vector<CheckpointInfo> saved;
  for (uint32_t epoch : {2u, 4u, 6u}) {
    absl::StatusOr<CheckpointInfo> info = checkpoints.Save(RandomCheckpoint(epoch));
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->crc32c, Crc32c(ReadBytes(info->path)));
    EXPECT_EQ(info->bytes, static_cast<int64_t>(ReadBytes(info->path).size()));
    saved.push_back(*info);
  }
  EXPECT_FALSE(std::filesystem::exists(saved[0].path));  // Only the newest two are kept.
  EXPECT_TRUE(std::filesystem::exists(saved[1].path));
  EXPECT_THAT(saved[2].path, HasSubstr("/checkpoint-000006.muppet"));

  std::string newest = ReadBytes(saved[2].path);
  newest[newest.size() / 2] ^= 1;
  WriteBytes(saved[2].path, newest);
  absl::StatusOr<LoadedCheckpoint> loaded = checkpoints.LoadLatest();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->path, saved[1].path);
  EXPECT_EQ(loaded->checkpoint.state.next_epoch(), 4u);
  ASSERT_EQ(loaded->skipped.size(), 1u);
  EXPECT_THAT(std::string(loaded->skipped[0].message()), HasSubstr(saved[2].path));
  EXPECT_THAT(std::string(loaded->skipped[0].message()), HasSubstr("CRC32C mismatch"));

  WriteBytes(saved[1].path, "");
  absl::StatusOr<LoadedCheckpoint> none = LoadCheckpoint(dir);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr(saved[1].path));
  EXPECT_THAT(std::string(none.status().message()), HasSubstr(saved[2].path));
}

// A run that went back to an older point (here the beginning: its checkpoints were unreadable)
// writes its next checkpoint: the later ones of the future that was rolled back go, instead of
// crowding out, and deleting, the checkpoints of the run that continues.
TEST(CheckpointDirectoryTest, ARolledBackRunsCheckpointsReplaceTheDiscardedFuture) {
  const std::string dir = TempDir("rolled-back");
  const CheckpointDirectory checkpoints(dir, 2);
  for (uint32_t epoch : {2u, 3u, 4u}) ASSERT_TRUE(checkpoints.Save(RandomCheckpoint(epoch)).ok());
  const auto left = [&] {
    std::vector<std::string> names;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
      names.push_back(f.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  ASSERT_EQ(left(),
            (std::vector<std::string>{"checkpoint-000003.muppet", "checkpoint-000004.muppet"}));
  ASSERT_TRUE(checkpoints.Save(RandomCheckpoint(1)).ok());
  EXPECT_EQ(left(), (std::vector<std::string>{"checkpoint-000001.muppet"}));
  ASSERT_TRUE(checkpoints.Save(RandomCheckpoint(2)).ok());
  EXPECT_EQ(left(),
            (std::vector<std::string>{"checkpoint-000001.muppet", "checkpoint-000002.muppet"}));
}

}  // namespace
}  // namespace muppet
