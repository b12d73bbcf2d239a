// In-memory image classification datasets: 8-bit pixels, channels-last, with integer labels.
#ifndef MUPPET_WORKER_DATA_DATASET_H_
#define MUPPET_WORKER_DATA_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "muppet/v1/spec.pb.h"

namespace muppet {

struct Dataset {
  int64_t channels = 1;
  int64_t height = 0;
  int64_t width = 0;
  int64_t classes = 0;
  std::vector<uint8_t> pixels;  // size() * height * width * channels, channels-last.
  std::vector<int32_t> labels;  // Each in [0, classes).

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t image_bytes() const { return height * width * channels; }
  const uint8_t* image(int64_t i) const { return pixels.data() + i * image_bytes(); }
  // Keeps only the first `n` examples (no-op when n is 0 or at least size()).
  void Truncate(int64_t n);
};

struct TrainTest {
  Dataset train;
  Dataset test;
};

// Reads an MNIST-style IDX pair: images (magic 0x00000803, dims N x rows x cols) and labels
// (magic 0x00000801, dims N), each gzipped or plain. Errors name the file and what is wrong:
// missing, wrong magic, truncated, trailing bytes, or counts that disagree.
absl::StatusOr<Dataset> ReadIdx(const std::string& images_path, const std::string& labels_path);

// Reads CIFAR-10's binary version from `dir`: data_batch_1.bin .. data_batch_5.bin and
// test_batch.bin, each a sequence of 3073-byte records (label, then 32x32 R, G, B planes).
absl::StatusOr<TrainTest> ReadCifar10(const std::string& dir);

// A learnable random dataset of the given shape: each class has a fixed random mean image, and
// every example adds uniform noise to its class's mean. Deterministic in `seed`.
TrainTest MakeSynthetic(const v1::SyntheticDataset& shape, uint64_t seed);

// Loads the dataset a (defaulted, valid) DatasetSpec names, with its train/test limits applied.
// `classes` is the model's class count (model.num_classes), 0 to take the dataset's; every
// label must be below it. An idx set without one infers it from its labels, and then every
// class up to the largest label must have a training example. INVALID_ARGUMENT naming the label
// file, the example and the count for a label out of range; naming both counts, before any file
// is read, for a count that differs from the one a dataset has by definition (DatasetClasses).
absl::StatusOr<TrainTest> LoadDataset(const v1::DatasetSpec& spec, int64_t classes, uint64_t seed);

}  // namespace muppet

#endif  // MUPPET_WORKER_DATA_DATASET_H_
