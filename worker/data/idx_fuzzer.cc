// Fuzzes the IDX reader with an image file and a label file, each gzipped or plain. The input is
// a 2-byte big-endian length n, then n bytes of the image file, then the label file.
#include <cstdint>

#include "base/fuzz_files.h"
#include "worker/data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t split = std::min<size_t>(size - 2, (size_t{data[0]} << 8) | data[1]);
  const std::string images = muppet::WriteFuzzFile("images", data + 2, split);
  const std::string labels = muppet::WriteFuzzFile("labels", data + 2 + split, size - 2 - split);
  absl::StatusOr<muppet::Dataset> d = muppet::ReadIdx(images, labels);
  if (d.ok() &&
      (d->pixels.size() != static_cast<size_t>(d->size() * d->image_bytes()) || d->classes < 2)) {
    std::abort();
  }
  return 0;
}
