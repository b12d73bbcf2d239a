#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace muppet {
namespace {

std::string Errno(const std::string& what, const std::string& path) {
  return absl::StrCat(path, ": ", what, ": ", std::strerror(errno));
}

std::string Directory(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// What kind of file `mode` is, for errors.
const char* Kind(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "a device";
}

absl::Status CheckTarget(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::InvalidArgumentError(Errno("cannot inspect", path));
  }
  if (S_ISREG(st.st_mode)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": is ", Kind(st.st_mode), ", not a regular file; it is not replaced"));
}

// A new, empty, exclusively created temporary file beside `path`; its name goes to `temp`.
absl::StatusOr<int> CreateTemp(const std::string& path, std::string& temp) {
  const std::string dir = Directory(path);
  const size_t slash = path.rfind('/');  // The name after `dir`'s.
  const std::string pattern = absl::StrCat(
      dir, "/.", path.substr(slash == std::string::npos ? 0 : slash + 1), ".tmp-XXXXXX");
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat(path, ": cannot create a file in ", dir, ": ", std::strerror(errno)));
  }
  temp = name.data();
  return fd;
}

absl::Status FsyncDirectory(const std::string& path) {
  const std::string dir = Directory(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(Errno("open", dir));
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : absl::InternalError(Errno("fsync", dir));
}

}  // namespace

absl::Status CheckReplaceableFile(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty file name");
  if (absl::Status s = CheckTarget(path); !s.ok()) return s;
  std::string temp;
  absl::StatusOr<int> fd = CreateTemp(path, temp);
  if (!fd.ok()) return absl::InvalidArgumentError(fd.status().message());
  ::close(*fd);
  ::unlink(temp.c_str());
  return absl::OkStatus();
}

absl::Status ReplaceFile(
    const std::string& path,
    const std::function<absl::Status(int fd, const std::string& temp)>& write) {
  if (absl::Status s = CheckTarget(path); !s.ok()) return s;
  std::string temp;
  absl::StatusOr<int> fd = CreateTemp(path, temp);
  if (!fd.ok()) return fd.status();
  absl::Status s = write(*fd, temp);
  if (s.ok() && ::fchmod(*fd, 0644) != 0) s = absl::InternalError(Errno("fchmod", temp));
  if (s.ok() && ::fsync(*fd) != 0) s = absl::InternalError(Errno("fsync", temp));
  if (::close(*fd) != 0 && s.ok()) s = absl::InternalError(Errno("close", temp));
  if (s.ok()) s = CheckTarget(path);
  if (s.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    s = absl::InternalError(Errno("rename to " + path, temp));
  }
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  return FsyncDirectory(path);
}

absl::Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(Errno("write", path));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace muppet
