#include "worker/data/dataset.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/random.h"

namespace muppet {
namespace {

// The IDX file `stem` in `dir`, gzipped or plain, preferring the gzipped name.
std::string IdxPath(const std::string& dir, const std::string& stem) {
  const std::string gz = absl::StrCat(dir, "/", stem, ".gz");
  return std::filesystem::exists(gz) ? gz : absl::StrCat(dir, "/", stem);
}

absl::StatusOr<TrainTest> ReadIdxDirectory(const std::string& dir) {
  absl::StatusOr<Dataset> train = ReadIdx(IdxPath(dir, "train-images-idx3-ubyte"),
                                          IdxPath(dir, "train-labels-idx1-ubyte"));
  if (!train.ok()) return train.status();
  absl::StatusOr<Dataset> test = ReadIdx(IdxPath(dir, "t10k-images-idx3-ubyte"),
                                         IdxPath(dir, "t10k-labels-idx1-ubyte"));
  if (!test.ok()) return test.status();
  if (test->height != train->height || test->width != train->width) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": test images are ", test->height, "x",
                                                   test->width, " but training images are ",
                                                   train->height, "x", train->width));
  }
  const int64_t classes = std::max(train->classes, test->classes);
  train->classes = test->classes = classes;
  return TrainTest{std::move(*train), std::move(*test)};
}

Dataset SyntheticSplit(const v1::SyntheticDataset& s, const std::vector<uint8_t>& means,
                       int64_t size, uint64_t seed) {
  Dataset d;
  d.channels = s.channels();
  d.height = s.height();
  d.width = s.width();
  d.classes = s.classes();
  const int64_t bytes = d.image_bytes();
  d.pixels.resize(size * bytes);
  d.labels.resize(size);
  Rng rng(seed);
  for (int64_t i = 0; i < size; ++i) {
    const int32_t label = static_cast<int32_t>(rng.Below(d.classes));
    d.labels[i] = label;
    const uint8_t* mean = means.data() + label * bytes;
    for (int64_t p = 0; p < bytes; ++p) {
      const int v = mean[p] + static_cast<int>(rng.Below(97)) - 48;  // Noise in [-48, 48].
      d.pixels[i * bytes + p] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
  return d;
}

}  // namespace

void Dataset::Truncate(int64_t n) {
  if (n <= 0 || n >= size()) return;
  labels.resize(n);
  pixels.resize(n * image_bytes());
}

TrainTest MakeSynthetic(const v1::SyntheticDataset& s, uint64_t seed) {
  const int64_t bytes = int64_t{s.channels()} * s.height() * s.width();
  std::vector<uint8_t> means(s.classes() * bytes);
  Rng rng(CounterHash(seed, 0));
  for (uint8_t& m : means) m = static_cast<uint8_t>(rng.Below(256));
  return {SyntheticSplit(s, means, s.train_size(), CounterHash(seed, 1)),
          SyntheticSplit(s, means, s.test_size(), CounterHash(seed, 2))};
}

absl::StatusOr<TrainTest> LoadDataset(const v1::DatasetSpec& spec, uint64_t seed) {
  absl::StatusOr<TrainTest> data;
  if (spec.name() == "fashion-mnist" || spec.name() == "idx") {
    data = ReadIdxDirectory(spec.data_dir());
  } else if (spec.name() == "cifar10") {
    data = ReadCifar10(spec.data_dir());
  } else if (spec.name() == "synthetic") {
    data = MakeSynthetic(spec.synthetic(), seed);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown dataset \"", spec.name(), "\""));
  }
  if (!data.ok()) return data.status();
  data->train.Truncate(spec.train_limit());
  data->test.Truncate(spec.test_limit());
  return data;
}

}  // namespace muppet
