// IDX and CIFAR-10 readers. Files are read through zlib, which reads plain files transparently.
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "worker/data/dataset.h"

namespace muppet {
namespace {

constexpr int64_t kMaxImages = 100'000'000;
constexpr int64_t kMaxSide = 4096;
constexpr size_t kChunk = 1 << 20;

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Datasets are read from regular files only: opening a FIFO blocks until a writer comes, and a
// read of one (or of a device) may never end, so a job could outlive its cancellation.
absl::StatusOr<GzFile> Open(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file (",
                                                   std::filesystem::is_fifo(status) ? "a FIFO"
                                                   : std::filesystem::is_directory(status)
                                                       ? "a directory"
                                                       : "a device or socket",
                                                   "); datasets are read from regular files"));
  }
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  return file;
}

// Reads exactly `n` bytes, appending them to `out` in chunks, so that a header that lies about
// the size cannot make us allocate more than the file really holds.
absl::Status ReadExactly(gzFile file, const std::string& path, int64_t n, std::vector<uint8_t>& out,
                         const char* what) {
  int64_t done = 0;
  while (done < n) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(kChunk, n - done));
    const size_t old = out.size();
    out.resize(old + want);
    const int got = gzread(file, out.data() + old, static_cast<unsigned>(want));
    if (got < 0) {
      int code = 0;
      return absl::DataLossError(absl::StrCat(path, ": corrupt data: ", gzerror(file, &code)));
    }
    out.resize(old + got);
    done += got;
    if (got == 0) break;
  }
  if (done < n) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated: expected ", n, " bytes of ", what, ", got ", done));
  }
  return absl::OkStatus();
}

absl::Status ExpectEnd(gzFile file, const std::string& path) {
  uint8_t extra;
  if (gzread(file, &extra, 1) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": unexpected bytes after the data"));
  }
  return absl::OkStatus();
}

uint32_t BigEndian(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Reads an IDX header with the given magic and returns its dimensions.
absl::StatusOr<std::vector<int64_t>> ReadHeader(gzFile file, const std::string& path,
                                                uint32_t magic, int dims) {
  std::vector<uint8_t> header;
  if (absl::Status s = ReadExactly(file, path, 4 + 4 * dims, header, "header"); !s.ok()) return s;
  if (BigEndian(header.data()) != magic) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": wrong magic number 0x", absl::Hex(BigEndian(header.data()), absl::kZeroPad8),
        ", expected 0x", absl::Hex(magic, absl::kZeroPad8)));
  }
  std::vector<int64_t> result;
  for (int i = 0; i < dims; ++i) result.push_back(BigEndian(header.data() + 4 + 4 * i));
  return result;
}

}  // namespace

absl::StatusOr<Dataset> ReadIdx(const std::string& images_path, const std::string& labels_path) {
  absl::StatusOr<GzFile> images = Open(images_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<std::vector<int64_t>> dims = ReadHeader(images->get(), images_path, 0x803, 3);
  if (!dims.ok()) return dims.status();
  const int64_t n = (*dims)[0], rows = (*dims)[1], cols = (*dims)[2];
  if (n < 1 || n > kMaxImages || rows < 1 || rows > kMaxSide || cols < 1 || cols > kMaxSide) {
    return absl::InvalidArgumentError(
        absl::StrCat(images_path, ": implausible dimensions ", n, " x ", rows, " x ", cols));
  }
  Dataset data;
  data.height = rows;
  data.width = cols;
  if (absl::Status s =
          ReadExactly(images->get(), images_path, n * rows * cols, data.pixels, "pixels");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ExpectEnd(images->get(), images_path); !s.ok()) return s;

  absl::StatusOr<GzFile> labels = Open(labels_path);
  if (!labels.ok()) return labels.status();
  absl::StatusOr<std::vector<int64_t>> count = ReadHeader(labels->get(), labels_path, 0x801, 1);
  if (!count.ok()) return count.status();
  if ((*count)[0] != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        labels_path, ": has ", (*count)[0], " labels but ", images_path, " has ", n, " images"));
  }
  std::vector<uint8_t> raw;
  if (absl::Status s = ReadExactly(labels->get(), labels_path, n, raw, "labels"); !s.ok()) return s;
  if (absl::Status s = ExpectEnd(labels->get(), labels_path); !s.ok()) return s;
  data.labels.assign(raw.begin(), raw.end());
  data.classes = std::max<int64_t>(2, *std::max_element(raw.begin(), raw.end()) + 1);
  return data;
}

absl::StatusOr<TrainTest> ReadCifar10(const std::string& dir) {
  constexpr int64_t kSide = 32, kRecord = 1 + 3 * kSide * kSide;
  const auto read_files = [&](const std::vector<std::string>& names) -> absl::StatusOr<Dataset> {
    Dataset data;
    data.channels = 3;
    data.height = data.width = kSide;
    data.classes = 10;
    for (const std::string& name : names) {
      const std::string path = absl::StrCat(dir, "/", name);
      absl::StatusOr<GzFile> file = Open(path);
      if (!file.ok()) return file.status();
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(path, ec);
      if (ec || bytes == 0 || bytes % kRecord != 0) {
        return absl::DataLossError(absl::StrCat(path, ": size ", bytes,
                                                " is not a positive multiple of the ", kRecord,
                                                "-byte record"));
      }
      std::vector<uint8_t> raw;
      if (absl::Status s = ReadExactly(file->get(), path, bytes, raw, "records"); !s.ok()) return s;
      const int64_t records = bytes / kRecord;
      const size_t offset = data.pixels.size();
      data.pixels.resize(offset + records * kRecord - records);
      for (int64_t r = 0; r < records; ++r) {
        const uint8_t* rec = raw.data() + r * kRecord;
        if (rec[0] >= 10) {
          return absl::DataLossError(
              absl::StrCat(path, ": record ", r, " has label ", int{rec[0]}, ", expected 0..9"));
        }
        data.labels.push_back(rec[0]);
        // Planar R, G, B to channels-last.
        uint8_t* out = data.pixels.data() + offset + r * (kRecord - 1);
        for (int64_t p = 0; p < kSide * kSide; ++p) {
          for (int64_t c = 0; c < 3; ++c) out[p * 3 + c] = rec[1 + c * kSide * kSide + p];
        }
      }
    }
    return data;
  };
  absl::StatusOr<Dataset> train =
      read_files({"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                  "data_batch_5.bin"});
  if (!train.ok()) return train.status();
  absl::StatusOr<Dataset> test = read_files({"test_batch.bin"});
  if (!test.ok()) return test.status();
  return TrainTest{std::move(*train), std::move(*test)};
}

}  // namespace muppet
