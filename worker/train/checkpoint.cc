#include "worker/train/checkpoint.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "worker/train/checkpoint_file.h"

namespace muppet {
namespace {

// Tensors are stored as the host lays them out; every machine muppet runs on is little-endian.
static_assert(std::endian::native == std::endian::little);

constexpr char kPrefix[] = "checkpoint-";
constexpr char kSuffix[] = ".muppet";

template <typename T>
std::string_view Bytes(const std::vector<T>& values) {
  return std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// At most 2^40 values in a checkpoint's tensors: far beyond any model, and small enough that
// their byte counts cannot overflow.
constexpr int64_t kMaxValues = int64_t{1} << 40;

// The values that `tensors` hold together. DATA_LOSS naming the tensor for a shape no tensor
// has: a negative dimension, or more than kMaxValues values (a damaged "run" section, whose
// count would otherwise wrap in the size check).
absl::StatusOr<int64_t> Elements(
    const google::protobuf::RepeatedPtrField<internal::TensorInfo>& tensors,
    const std::string& path) {
  int64_t n = 0;
  for (const internal::TensorInfo& t : tensors) {
    int64_t values = 1;
    for (const int64_t dim : t.shape()) {
      if (dim < 0 || (dim > 0 && values > kMaxValues / dim)) {
        values = -1;
        break;
      }
      values *= dim;
    }
    if (values < 0 || n + values > kMaxValues) {
      return absl::DataLossError(absl::StrCat(path, ": section \"run\": tensor \"", t.name(),
                                              "\" has an impossible shape"));
    }
    n += values;
  }
  return n;
}

// The section `name` of `sections` as `count` values of T.
template <typename T>
absl::Status Values(const std::vector<CheckpointSection>& sections, const std::string& name,
                    int64_t count, const std::string& path, std::vector<T>& out) {
  const auto it = std::find_if(sections.begin(), sections.end(),
                               [&](const CheckpointSection& s) { return s.name == name; });
  if (it == sections.end()) {
    return absl::DataLossError(absl::StrCat(path, ": section \"", name, "\" is missing"));
  }
  if (it->bytes.size() != static_cast<size_t>(count) * sizeof(T)) {
    return absl::DataLossError(absl::StrCat(path, ": section \"", name, "\" holds ",
                                            it->bytes.size(), " bytes; section \"run\" lists ",
                                            count, " values of ", sizeof(T), " bytes"));
  }
  out.resize(static_cast<size_t>(count));
  // memcpy from or to the null data() of an empty vector is undefined, even for 0 bytes.
  if (count > 0) std::memcpy(out.data(), it->bytes.data(), it->bytes.size());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WrittenFile> WriteTrainingCheckpoint(const std::string& path,
                                                    const TrainingCheckpoint& c) {
  const std::string run = c.state.SerializeAsString();
  return WriteCheckpointFile(path, {{"run", run},
                                    {"parameters", Bytes(c.parameters)},
                                    {"momentum", Bytes(c.momentum)},
                                    {"buffers", Bytes(c.buffers)},
                                    {"gradient_window", Bytes(c.gradient_window)}});
}

absl::StatusOr<TrainingCheckpoint> ReadTrainingCheckpoint(const std::string& path) {
  absl::StatusOr<std::vector<CheckpointSection>> sections = ReadCheckpointFile(path);
  if (!sections.ok()) return sections.status();
  TrainingCheckpoint c;
  if (sections->empty() || sections->front().name != "run" ||
      !c.state.ParseFromString(sections->front().bytes)) {
    return absl::DataLossError(absl::StrCat(path, ": section \"run\" is missing or unparsable"));
  }
  const absl::StatusOr<int64_t> parameters = Elements(c.state.parameters(), path);
  if (!parameters.ok()) return parameters.status();
  const absl::StatusOr<int64_t> buffers = Elements(c.state.buffers(), path);
  if (!buffers.ok()) return buffers.status();
  for (absl::Status s :
       {Values(*sections, "parameters", *parameters, path, c.parameters),
        Values(*sections, "momentum", *parameters, path, c.momentum),
        Values(*sections, "buffers", *buffers, path, c.buffers),
        Values(*sections, "gradient_window", *parameters, path, c.gradient_window)}) {
    if (!s.ok()) return s;
  }
  return c;
}

absl::StatusOr<CheckpointInfo> CheckpointDirectory::Save(const TrainingCheckpoint& c) const {
  const auto start = std::chrono::steady_clock::now();
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat(dir_, ": cannot create the checkpoint directory: ", error.message()));
  }
  CheckpointInfo info{.next_epoch = c.state.next_epoch(),
                      .policy_epoch = static_cast<uint32_t>(c.state.policy_epoch()),
                      .precision_bits = c.state.precision_bits()};
  info.path = absl::StrFormat("%s/%s%06u%s", dir_, kPrefix, info.next_epoch, kSuffix);
  absl::StatusOr<WrittenFile> written = WriteTrainingCheckpoint(info.path, c);
  if (!written.ok()) return written.status();
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  info.bytes = written->bytes;
  info.crc32c = written->crc32c;
  // Newest first: those of later epochs, then this one, then the older ones.
  const std::vector<std::string> files = List();
  const size_t self =
      static_cast<size_t>(std::find(files.begin(), files.end(), info.path) - files.begin());
  for (size_t i = 0; i < files.size(); ++i) {
    if (i < self || i >= self + static_cast<size_t>(std::max(keep_, 1))) {
      std::filesystem::remove(files[i], error);  // A leftover file is harmless.
    }
  }
  return info;
}

std::vector<std::string> CheckpointDirectory::List() const {
  std::vector<std::string> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, error)) {
    const std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, kPrefix) && absl::EndsWith(name, kSuffix)) {
      files.push_back(entry.path().string());
    }
  }
  // Zero-padded epochs: the names sort by epoch.
  std::sort(files.rbegin(), files.rend());
  return files;
}

absl::StatusOr<LoadedCheckpoint> CheckpointDirectory::LoadLatest() const {
  const std::vector<std::string> files = List();
  if (files.empty()) {
    return absl::NotFoundError(
        absl::StrCat(dir_, ": no checkpoint (", kPrefix, "*", kSuffix, ") in the directory"));
  }
  LoadedCheckpoint loaded;
  for (const std::string& path : files) {
    absl::StatusOr<TrainingCheckpoint> c = ReadTrainingCheckpoint(path);
    if (c.ok()) {
      loaded.checkpoint = *std::move(c);
      loaded.path = path;
      return loaded;
    }
    loaded.skipped.push_back(c.status());
  }
  std::vector<std::string> errors;
  for (const absl::Status& s : loaded.skipped) errors.emplace_back(s.message());
  return absl::DataLossError(
      absl::StrCat(dir_, ": no checkpoint reads back: ", absl::StrJoin(errors, "; ")));
}

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path) {
  if (std::filesystem::is_directory(path)) return CheckpointDirectory(path, 1).LoadLatest();
  absl::StatusOr<TrainingCheckpoint> c = ReadTrainingCheckpoint(path);
  if (!c.ok()) return c.status();
  return LoadedCheckpoint{.checkpoint = *std::move(c), .path = path};
}

}  // namespace muppet
