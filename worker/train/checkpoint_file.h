// The container of muppet's checkpoints: a versioned header, then named sections, each with a
// CRC32C over its name, length and bytes.
//
//   "MUPPETCK" | u32 format version | u32 section count | u32 CRC32C of the 16 bytes before
//   per section: u32 name length | name | u64 byte count | bytes | u32 CRC32C of the four before
//
// Integers are little-endian. Files are written atomically: a temporary file beside the target,
// fsync, rename over the target, fsync of the directory; a crash leaves the old file or the new
// one, never a mix.
#ifndef MUPPET_WORKER_TRAIN_CHECKPOINT_FILE_H_
#define MUPPET_WORKER_TRAIN_CHECKPOINT_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace muppet {

inline constexpr uint32_t kCheckpointFormatVersion = 1;

// A section as read back.
struct CheckpointSection {
  std::string name;
  std::string bytes;
};

// A section to write: views of bytes the caller keeps alive for the call.
struct SectionView {
  std::string_view name;
  std::string_view bytes;
};

// What was written.
struct WrittenFile {
  int64_t bytes = 0;
  uint32_t crc32c = 0;  // Of the whole file.
};

// Writes `sections` to `path` atomically, streaming them (the file is never gathered in
// memory). Errors (INTERNAL, naming the file and the system call): the directory is missing or
// not writable, the disk is full. On error `path` is as it was.
absl::StatusOr<WrittenFile> WriteCheckpointFile(const std::string& path,
                                                const std::vector<SectionView>& sections);

// The sections of the checkpoint at `path`, in file order. Errors name the file and, past the
// header, the section: NOT_FOUND (no file), DATA_LOSS (not a muppet checkpoint, truncated, a
// CRC32C mismatch, bytes after the last section), FAILED_PRECONDITION (a format version this
// build does not read).
absl::StatusOr<std::vector<CheckpointSection>> ReadCheckpointFile(const std::string& path);

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_CHECKPOINT_FILE_H_
