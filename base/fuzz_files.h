// Helpers for fuzz targets of readers that take a path: the input written to a file of a
// directory private to the process.
#ifndef MUPPET_BASE_FUZZ_FILES_H_
#define MUPPET_BASE_FUZZ_FILES_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace muppet {

// A directory for this process's fuzz inputs, made on first use; aborts when it cannot be made.
inline const std::string& FuzzDirectory() {
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/muppet-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    return new std::string(pattern);
  }();
  return *dir;
}

// Writes `size` bytes at `data` to `name` in FuzzDirectory() and returns its path; aborts when it
// cannot.
inline std::string WriteFuzzFile(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = FuzzDirectory() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

}  // namespace muppet

#endif  // MUPPET_BASE_FUZZ_FILES_H_
