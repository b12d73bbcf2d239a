// Files replaced atomically: written to a temporary file beside the target, synced, renamed over
// it, and the directory synced, so that a crash leaves the old file or the new one, never a mix.
#ifndef MUPPET_BASE_ATOMIC_FILE_H_
#define MUPPET_BASE_ATOMIC_FILE_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace muppet {

// OK when `path` names a regular file or nothing, in an existing directory where a file can be
// created now (tried with a temporary file, removed at once). Otherwise INVALID_ARGUMENT naming
// `path` and what is wrong: a symbolic link, a directory, a device, FIFO or socket (rename would
// replace the link or the node, not write through it), a missing directory, or no permission.
// Call it before long work whose result goes to `path`, so that the work is not lost at the end.
absl::Status CheckReplaceableFile(const std::string& path);

// Replaces `path` by the bytes that `write` writes to the file descriptor it is given (with
// WriteAll), atomically as above. The temporary file is created exclusively (never through a
// link) in `path`'s directory. Errors: INVALID_ARGUMENT when `path` is not a regular file, checked
// before and again just before the rename; INTERNAL naming the file and the system call that
// failed (a missing or read-only directory, a full disk); any error of `write`. On error `path`
// is as it was and the temporary file is removed.
absl::Status ReplaceFile(const std::string& path,
                         const std::function<absl::Status(int fd, const std::string& temp)>& write);

// Writes all of `bytes` to `fd`, retrying short writes. INTERNAL naming `path` on an error.
absl::Status WriteAll(int fd, std::string_view bytes, const std::string& path);

}  // namespace muppet

#endif  // MUPPET_BASE_ATOMIC_FILE_H_
