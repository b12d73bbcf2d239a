#include "worker/data/dataset.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/random.h"
#include "proto/spec_validation.h"

namespace muppet {
namespace {

// The IDX file `stem` in `dir`, gzipped or plain, preferring the gzipped name.
std::string IdxPath(const std::string& dir, const std::string& stem) {
  const std::string gz = absl::StrCat(dir, "/", stem, ".gz");
  return std::filesystem::exists(gz) ? gz : absl::StrCat(dir, "/", stem);
}

// The first label of `data` (read from `labels_path`) that is not below `classes`, as an error
// that names the file, the example and where the class count came from.
absl::Status CheckLabelsBelow(const Dataset& data, const std::string& labels_path, int64_t classes,
                              absl::string_view source) {
  for (int64_t i = 0; i < data.size(); ++i) {
    if (data.labels[i] >= classes) {
      return absl::InvalidArgumentError(absl::StrCat(labels_path, ": example ", i, " has label ",
                                                     data.labels[i], ", not below the ", classes,
                                                     " classes of ", source));
    }
  }
  return absl::OkStatus();
}

// With no class count given, the training labels must name every class from 0 to the largest
// label: one stray byte (a label of 255 in a 10-class set) would otherwise build a model of 256
// classes, 246 of them never seen.
absl::StatusOr<int64_t> InferClasses(const Dataset& train, const Dataset& test,
                                     const std::string& labels_path) {
  const int64_t classes = std::max(train.classes, test.classes);
  std::vector<bool> seen(classes);
  for (int32_t label : train.labels) seen[label] = true;
  for (int64_t c = 0; c < classes; ++c) {
    if (!seen[c]) {
      return absl::InvalidArgumentError(absl::StrCat(
          labels_path, ": labels go up to ", classes - 1, " but class ", c,
          " has no training example; set model.num_classes to the dataset's class count"));
    }
  }
  return classes;
}

// Reads an IDX directory. `classes` > 0 is the class count every label must be below, named by
// `source`; 0 infers it from the labels.
absl::StatusOr<TrainTest> ReadIdxDirectory(const std::string& dir, int64_t classes,
                                           absl::string_view source) {
  const std::string train_labels = IdxPath(dir, "train-labels-idx1-ubyte");
  const std::string test_labels = IdxPath(dir, "t10k-labels-idx1-ubyte");
  absl::StatusOr<Dataset> train = ReadIdx(IdxPath(dir, "train-images-idx3-ubyte"), train_labels);
  if (!train.ok()) return train.status();
  absl::StatusOr<Dataset> test = ReadIdx(IdxPath(dir, "t10k-images-idx3-ubyte"), test_labels);
  if (!test.ok()) return test.status();
  if (test->height != train->height || test->width != train->width) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": test images are ", test->height, "x",
                                                   test->width, " but training images are ",
                                                   train->height, "x", train->width));
  }
  if (classes == 0) {
    absl::StatusOr<int64_t> inferred = InferClasses(*train, *test, train_labels);
    if (!inferred.ok()) return inferred.status();
    classes = *inferred;
  }
  if (absl::Status s = CheckLabelsBelow(*train, train_labels, classes, source); !s.ok()) return s;
  if (absl::Status s = CheckLabelsBelow(*test, test_labels, classes, source); !s.ok()) return s;
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

absl::StatusOr<TrainTest> LoadDataset(const v1::DatasetSpec& spec, int64_t classes, uint64_t seed) {
  // Checked before anything is read: the count a dataset has by definition is the only one.
  const int64_t fixed = DatasetClasses(spec);
  if (classes != 0 && fixed != 0 && classes != fixed) {
    return absl::InvalidArgumentError(absl::StrCat("model.num_classes is ", classes, " but \"",
                                                   spec.name(), "\" has ", fixed, " classes"));
  }
  absl::StatusOr<TrainTest> data;
  if (spec.name() == "fashion-mnist") {
    data = ReadIdxDirectory(spec.data_dir(), fixed, "fashion-mnist");
  } else if (spec.name() == "idx") {
    data = ReadIdxDirectory(spec.data_dir(), classes, "model.num_classes");
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
