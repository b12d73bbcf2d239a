#include "worker/train/checkpoint_file.h"

#include <fstream>
#include <iterator>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/crc32c.h"

namespace muppet {
namespace {

constexpr char kMagic[] = "MUPPETCK";
constexpr size_t kMagicSize = sizeof(kMagic) - 1;

template <typename T>
void Put(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

// Reads little-endian integers and byte runs from a file's contents, failing with DATA_LOSS
// that names the file and what was being read.
class Cursor {
 public:
  Cursor(std::string_view data, const std::string& path) : data_(data), path_(path) {}

  template <typename T>
  absl::Status Get(T& value, absl::string_view what) {
    std::string_view bytes;
    if (absl::Status s = Take(sizeof(T), bytes, what); !s.ok()) return s;
    value = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      value |= static_cast<T>(static_cast<unsigned char>(bytes[i])) << (8 * i);
    }
    return absl::OkStatus();
  }

  absl::Status Take(uint64_t n, std::string_view& out, absl::string_view what) {
    if (n > data_.size() - offset_) {
      return absl::DataLossError(absl::StrCat(path_, ": truncated in ", what, " (needs ", n,
                                              " bytes at offset ", offset_, ", the file has ",
                                              data_.size(), ")"));
    }
    out = data_.substr(offset_, n);
    offset_ += n;
    return absl::OkStatus();
  }

  size_t offset() const { return offset_; }
  bool done() const { return offset_ == data_.size(); }
  std::string_view since(size_t start) const { return data_.substr(start, offset_ - start); }

 private:
  std::string_view data_;
  const std::string& path_;
  size_t offset_ = 0;
};

// Writes a file's bytes as they come, keeping the CRC32C of all of them.
class Writer {
 public:
  Writer(int fd, const std::string& path) : fd_(fd), path_(path) {}

  absl::Status Write(std::string_view bytes) {
    crc_ = Crc32c(bytes, crc_);
    bytes_ += static_cast<int64_t>(bytes.size());
    return WriteAll(fd_, bytes, path_);
  }
  WrittenFile written() const { return {.bytes = bytes_, .crc32c = crc_}; }

 private:
  const int fd_;
  const std::string& path_;
  int64_t bytes_ = 0;
  uint32_t crc_ = 0;
};

// The layout of checkpoint_file.h, section by section, without gathering the file in memory.
absl::Status WriteSections(Writer& out, const std::vector<SectionView>& sections) {
  std::string header(kMagic, kMagicSize);
  Put<uint32_t>(header, kCheckpointFormatVersion);
  Put<uint32_t>(header, static_cast<uint32_t>(sections.size()));
  Put<uint32_t>(header, Crc32c(header));
  if (absl::Status s = out.Write(header); !s.ok()) return s;
  for (const SectionView& section : sections) {
    std::string prefix;
    Put<uint32_t>(prefix, static_cast<uint32_t>(section.name.size()));
    prefix += section.name;
    Put<uint64_t>(prefix, section.bytes.size());
    std::string crc;
    Put<uint32_t>(crc, Crc32c(section.bytes, Crc32c(prefix)));
    for (std::string_view part : {std::string_view(prefix), section.bytes, std::string_view(crc)}) {
      if (absl::Status s = out.Write(part); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CheckpointSection> DecodeSection(Cursor& in, uint32_t index,
                                                const std::string& path) {
  const size_t start = in.offset();
  const std::string where = absl::StrCat("section ", index);
  uint32_t name_size = 0;
  if (absl::Status s = in.Get(name_size, where); !s.ok()) return s;
  std::string_view name;
  if (absl::Status s = in.Take(name_size, name, where); !s.ok()) return s;
  // From here on errors name the section, even if its name is what was damaged.
  const std::string section = absl::StrCat("section \"", std::string(name), "\"");
  uint64_t size = 0;
  std::string_view bytes;
  if (absl::Status s = in.Get(size, section); !s.ok()) return s;
  if (absl::Status s = in.Take(size, bytes, section); !s.ok()) return s;
  const uint32_t computed = Crc32c(in.since(start));
  uint32_t stored = 0;
  if (absl::Status s = in.Get(stored, section); !s.ok()) return s;
  if (stored != computed) {
    return absl::DataLossError(absl::StrCat(path, ": ", section, ": CRC32C mismatch (stored ",
                                            absl::Hex(stored), ", computed ", absl::Hex(computed),
                                            "): the file is corrupt"));
  }
  return CheckpointSection{.name = std::string(name), .bytes = std::string(bytes)};
}

}  // namespace

absl::StatusOr<WrittenFile> WriteCheckpointFile(const std::string& path,
                                                const std::vector<SectionView>& sections) {
  WrittenFile written;
  absl::Status s = ReplaceFile(path, [&](int fd, const std::string& temp) {
    Writer out(fd, temp);
    absl::Status status = WriteSections(out, sections);
    written = out.written();
    return status;
  });
  if (!s.ok()) return s;
  return written;
}

absl::StatusOr<std::vector<CheckpointSection>> ReadCheckpointFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot open the checkpoint"));
  const std::string data((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  Cursor in(data, path);
  std::string_view magic;
  if (!in.Take(kMagicSize, magic, "the header").ok() || magic != std::string_view(kMagic)) {
    return absl::DataLossError(
        absl::StrCat(path, ": not a muppet checkpoint (no \"", kMagic, "\" header)"));
  }
  uint32_t version = 0, count = 0, stored = 0;
  if (absl::Status s = in.Get(version, "the header"); !s.ok()) return s;
  if (absl::Status s = in.Get(count, "the header"); !s.ok()) return s;
  const uint32_t computed = Crc32c(in.since(0));
  if (absl::Status s = in.Get(stored, "the header"); !s.ok()) return s;
  if (stored != computed) {
    return absl::DataLossError(absl::StrCat(path, ": the header: CRC32C mismatch (stored ",
                                            absl::Hex(stored), ", computed ", absl::Hex(computed),
                                            "): the file is corrupt"));
  }
  if (version != kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": checkpoint format version ", version,
                                                      "; this build reads version ",
                                                      kCheckpointFormatVersion));
  }
  std::vector<CheckpointSection> sections;
  for (uint32_t i = 0; i < count; ++i) {
    absl::StatusOr<CheckpointSection> section = DecodeSection(in, i, path);
    if (!section.ok()) return section.status();
    sections.push_back(*std::move(section));
  }
  if (!in.done()) {
    return absl::DataLossError(absl::StrCat(path, ": ", data.size() - in.offset(),
                                            " unexpected bytes after the last section"));
  }
  return sections;
}

}  // namespace muppet
