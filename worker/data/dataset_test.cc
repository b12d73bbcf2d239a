#include "worker/data/dataset.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/dataset_test";
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

void WriteFile(const std::string& path, const std::string& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary) << bytes;
  }
}

std::string BigEndian(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string IdxImages(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t payload) {
  std::string s = BigEndian(magic) + BigEndian(n) + BigEndian(rows) + BigEndian(cols);
  for (size_t i = 0; i < payload; ++i) s.push_back(static_cast<char>(i * 7 % 256));
  return s;
}

std::string IdxLabels(uint32_t n, uint32_t classes) {
  std::string s = BigEndian(0x801) + BigEndian(n);
  for (uint32_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % classes));
  return s;
}

TEST(ReadIdxTest, ReadsGzippedAndPlainFiles) {
  for (bool gzip : {true, false}) {
    const std::string images = TempPath(gzip ? "ok-images.gz" : "ok-images");
    const std::string labels = TempPath(gzip ? "ok-labels.gz" : "ok-labels");
    WriteFile(images, IdxImages(0x803, 5, 3, 4, 60), gzip);
    WriteFile(labels, IdxLabels(5, 3), gzip);
    absl::StatusOr<Dataset> d = ReadIdx(images, labels);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->size(), 5);
    EXPECT_EQ(d->height, 3);
    EXPECT_EQ(d->width, 4);
    EXPECT_EQ(d->channels, 1);
    EXPECT_EQ(d->classes, 3);
    EXPECT_EQ(d->labels, (std::vector<int32_t>{0, 1, 2, 0, 1}));
    EXPECT_EQ(d->image(1)[0], 12 * 7 % 256);
  }
}

TEST(ReadIdxTest, MissingFileNamesIt) {
  const std::string labels = TempPath("m-labels");
  WriteFile(labels, IdxLabels(1, 2), false);
  absl::StatusOr<Dataset> d = ReadIdx(TempPath("absent"), labels);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(d.status().message(), HasSubstr("absent: no such file"));
}

// A FIFO would block the reader (open waits for a writer), so that a cancelled job outlives
// its cancellation: it is refused at once, as is a directory.
TEST(ReadIdxTest, AFifoOrDirectoryIsRefusedWithoutBlocking) {
  const std::string labels = TempPath("f-labels");
  WriteFile(labels, IdxLabels(1, 2), false);
  const std::string fifo = TempPath("fifo-images");
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<Dataset> d = ReadIdx(fifo, labels);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(), HasSubstr(fifo + ": not a regular file (a FIFO)"));
  const std::string dir = TempPath("dir-images");
  std::filesystem::create_directories(dir);
  EXPECT_THAT(ReadIdx(dir, labels).status().message(),
              HasSubstr(dir + ": not a regular file (a directory)"));
}

TEST(ReadIdxTest, WrongMagicNamesFileAndValues) {
  const std::string images = TempPath("magic-images");
  WriteFile(images, IdxImages(0x801, 5, 3, 4, 60), false);
  absl::StatusOr<Dataset> d = ReadIdx(images, TempPath("unused"));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(),
              HasSubstr("magic-images: wrong magic number 0x00000801, expected 0x00000803"));
}

TEST(ReadIdxTest, TruncatedPixels) {
  const std::string images = TempPath("trunc-images.gz");
  WriteFile(images, IdxImages(0x803, 5, 3, 4, 50), true);
  absl::StatusOr<Dataset> d = ReadIdx(images, TempPath("unused"));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(),
              HasSubstr("trunc-images.gz: truncated: expected 60 bytes of pixels, got 50"));
}

TEST(ReadIdxTest, TruncatedGzipStream) {
  const std::string full = TempPath("cut-full.gz");
  WriteFile(full, IdxImages(0x803, 50, 10, 10, 5000), true);
  std::ifstream in(full, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::string cut = TempPath("cut-images.gz");
  WriteFile(cut, bytes.substr(0, bytes.size() / 2), false);
  absl::StatusOr<Dataset> d = ReadIdx(cut, TempPath("unused"));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("cut-images.gz"));
}

TEST(ReadIdxTest, TrailingBytes) {
  const std::string images = TempPath("trail-images");
  WriteFile(images, IdxImages(0x803, 5, 3, 4, 61), false);
  absl::StatusOr<Dataset> d = ReadIdx(images, TempPath("unused"));
  EXPECT_THAT(d.status().message(), HasSubstr("trail-images: unexpected bytes after the data"));
}

TEST(ReadIdxTest, ImplausibleHeader) {
  const std::string images = TempPath("huge-images");
  WriteFile(images, IdxImages(0x803, 5, 100000, 4, 0), false);
  absl::StatusOr<Dataset> d = ReadIdx(images, TempPath("unused"));
  EXPECT_THAT(d.status().message(),
              HasSubstr("huge-images: implausible dimensions 5 x 100000 x 4"));
}

TEST(ReadIdxTest, MismatchedCounts) {
  const std::string images = TempPath("mm-images");
  const std::string labels = TempPath("mm-labels");
  WriteFile(images, IdxImages(0x803, 5, 3, 4, 60), false);
  WriteFile(labels, IdxLabels(4, 3), false);
  absl::StatusOr<Dataset> d = ReadIdx(images, labels);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(d.status().message(), HasSubstr("mm-labels: has 4 labels but"));
  EXPECT_THAT(d.status().message(), HasSubstr("mm-images has 5 images"));
}

std::string CifarRecords(int n, uint8_t label) {
  std::string s;
  for (int r = 0; r < n; ++r) {
    s.push_back(static_cast<char>(label));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) s.push_back(static_cast<char>(c * 50 + p % 7 + r));
  }
  return s;
}

std::string CifarDir(const std::string& name, const std::string& test_batch) {
  const std::string dir = TempPath(name);
  std::filesystem::create_directories(dir);
  for (int i = 1; i <= 5; ++i) {
    WriteFile(dir + "/data_batch_" + std::to_string(i) + ".bin", CifarRecords(2, i), false);
  }
  WriteFile(dir + "/test_batch.bin", test_batch, false);
  return dir;
}

TEST(ReadCifar10Test, ReadsPlanarRecordsChannelsLast) {
  absl::StatusOr<TrainTest> d = ReadCifar10(CifarDir("cifar-ok", CifarRecords(3, 9)));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train.size(), 10);
  EXPECT_EQ(d->test.size(), 3);
  EXPECT_EQ(d->train.channels, 3);
  EXPECT_EQ(d->train.labels[0], 1);
  EXPECT_EQ(d->test.labels[2], 9);
  // Pixel 5 of record 1 of the first file: R = 0 + 5 + 1, G = 50 + 5 + 1, B = 100 + 5 + 1.
  const uint8_t* px = d->train.image(1) + 5 * 3;
  EXPECT_EQ(px[0], 6);
  EXPECT_EQ(px[1], 56);
  EXPECT_EQ(px[2], 106);
}

TEST(ReadCifar10Test, RejectsPartialRecordsAndBadLabels) {
  absl::StatusOr<TrainTest> d = ReadCifar10(CifarDir("cifar-size", CifarRecords(1, 0) + "x"));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(),
              HasSubstr("test_batch.bin: size 3074 is not a positive multiple of the 3073-byte"));
  d = ReadCifar10(CifarDir("cifar-label", CifarRecords(1, 12)));
  EXPECT_THAT(d.status().message(), HasSubstr("test_batch.bin: record 0 has label 12"));
}

TEST(SyntheticTest, DeterministicAndShaped) {
  v1::SyntheticDataset s;
  s.set_channels(3);
  s.set_height(8);
  s.set_width(6);
  s.set_classes(4);
  s.set_train_size(20);
  s.set_test_size(7);
  const TrainTest a = MakeSynthetic(s, 5), b = MakeSynthetic(s, 5), c = MakeSynthetic(s, 6);
  EXPECT_EQ(a.train.size(), 20);
  EXPECT_EQ(a.test.size(), 7);
  EXPECT_EQ(a.train.pixels.size(), 20u * 3 * 8 * 6);
  EXPECT_EQ(a.train.pixels, b.train.pixels);
  EXPECT_EQ(a.test.labels, b.test.labels);
  EXPECT_NE(a.train.pixels, c.train.pixels);
}

TEST(LoadDatasetTest, FashionMnistFromDebianPackage) {
  v1::DatasetSpec spec;
  spec.set_name("fashion-mnist");
  spec.set_data_dir("/usr/share/datasets/fashion-mnist");
  spec.set_train_limit(1000);
  absl::StatusOr<TrainTest> d = LoadDataset(spec, 0, 0);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train.size(), 1000);
  EXPECT_EQ(d->test.size(), 10000);
  EXPECT_EQ(d->train.height, 28);
  EXPECT_EQ(d->train.classes, 10);
  // Fashion-MNIST's first training image is an ankle boot (class 9).
  EXPECT_EQ(d->train.labels[0], 9);
}

TEST(LoadDatasetTest, MissingDirectoryNamesTheFile) {
  v1::DatasetSpec spec;
  spec.set_name("idx");
  spec.set_data_dir("/nonexistent/idx");
  absl::StatusOr<TrainTest> d = LoadDataset(spec, 0, 0);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(d.status().message(), HasSubstr("/nonexistent/idx/train-images-idx3-ubyte"));
}

// An idx directory whose training labels are `train_labels` and test labels 0, 1, 0, ...
std::string IdxDirectory(const std::string& name, const std::vector<uint8_t>& train_labels) {
  const std::string dir = TempPath(name);
  std::filesystem::create_directories(dir);
  const uint32_t n = static_cast<uint32_t>(train_labels.size());
  WriteFile(dir + "/train-images-idx3-ubyte", IdxImages(0x803, n, 2, 2, n * 4), false);
  WriteFile(dir + "/train-labels-idx1-ubyte",
            BigEndian(0x801) + BigEndian(n) + std::string(train_labels.begin(), train_labels.end()),
            false);
  WriteFile(dir + "/t10k-images-idx3-ubyte", IdxImages(0x803, 4, 2, 2, 16), false);
  WriteFile(dir + "/t10k-labels-idx1-ubyte", IdxLabels(4, 2), false);
  return dir;
}

v1::DatasetSpec IdxSpec(const std::string& dir) {
  v1::DatasetSpec spec;
  spec.set_name("idx");
  spec.set_data_dir(dir);
  return spec;
}

TEST(LoadDatasetTest, IdxClassesInferredWhenEveryClassOccurs) {
  absl::StatusOr<TrainTest> d = LoadDataset(IdxSpec(IdxDirectory("idx3", {0, 1, 2, 1})), 0, 0);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train.classes, 3);
  EXPECT_EQ(d->test.classes, 3);
}

TEST(LoadDatasetTest, IdxStrayLabelRefusedWithoutClassCount) {
  const std::string dir = IdxDirectory("idx255", {0, 1, 255, 1});
  absl::StatusOr<TrainTest> d = LoadDataset(IdxSpec(dir), 0, 0);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d.status().message(),
            dir +
                "/train-labels-idx1-ubyte: labels go up to 255 but class 2 has no training "
                "example; set model.num_classes to the dataset's class count");
}

TEST(LoadDatasetTest, IdxLabelsCheckedAgainstModelClasses) {
  const std::string dir = IdxDirectory("idx-count", {0, 1, 9, 1});
  absl::StatusOr<TrainTest> d = LoadDataset(IdxSpec(dir), 3, 0);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d.status().message(), dir +
                                      "/train-labels-idx1-ubyte: example 2 has label 9, not "
                                      "below the 3 classes of model.num_classes");
  // A count above the largest label is honoured: classes without examples are allowed then.
  d = LoadDataset(IdxSpec(dir), 12, 0);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train.classes, 12);
  EXPECT_EQ(d->test.classes, 12);
}

TEST(LoadDatasetTest, FixedClassCountMismatchNamesBoth) {
  v1::DatasetSpec spec;
  spec.set_name("synthetic");
  v1::SyntheticDataset& s = *spec.mutable_synthetic();
  s.set_channels(1);
  s.set_height(2);
  s.set_width(2);
  s.set_classes(4);
  s.set_train_size(8);
  s.set_test_size(2);
  absl::StatusOr<TrainTest> d = LoadDataset(spec, 3, 0);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d.status().message(), "model.num_classes is 3 but \"synthetic\" has 4 classes");
  EXPECT_TRUE(LoadDataset(spec, 4, 0).ok());

  v1::DatasetSpec fashion;
  fashion.set_name("fashion-mnist");
  fashion.set_data_dir("/nonexistent/fashion");  // Refused before the files are looked for.
  EXPECT_EQ(LoadDataset(fashion, 12, 0).status().message(),
            "model.num_classes is 12 but \"fashion-mnist\" has 10 classes");
}

}  // namespace
}  // namespace muppet
