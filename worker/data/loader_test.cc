#include "worker/data/loader.h"

#include <cmath>
#include <set>

#include "gtest/gtest.h"

namespace muppet {
namespace {

Dataset Ramp(int64_t n, int64_t c, int64_t h, int64_t w) {
  Dataset d;
  d.channels = c;
  d.height = h;
  d.width = w;
  d.classes = static_cast<int>(n);
  for (int64_t i = 0; i < n; ++i) {
    d.labels.push_back(static_cast<int32_t>(i));  // Label = example index, to trace order.
    for (int64_t p = 0; p < h * w * c; ++p) d.pixels.push_back(static_cast<uint8_t>((i * 31 + p) % 256));
  }
  return d;
}

TEST(NormalizationTest, PerChannelMeanAndStd) {
  Dataset d;
  d.channels = 2;
  d.pixels = {0, 255, 255, 255};  // Channel 0: {0, 1}; channel 1: {1, 1}.
  d.labels = {0, 0};
  const Normalization n = Normalization::Of(d);
  EXPECT_NEAR(n.mean[0], 0.5, 1e-6);
  EXPECT_NEAR(n.stddev[0], 0.5, 1e-6);
  EXPECT_NEAR(n.mean[1], 1.0, 1e-6);
  EXPECT_NEAR(n.stddev[1], 1e-3, 1e-9);  // Floored: a constant channel.
}

TEST(BatchLoaderTest, CoversEveryExampleOnceWithNormalisedPixels) {
  const Dataset d = Ramp(10, 2, 3, 3);
  const Normalization n{{0.25f, 0.5f}, {0.5f, 0.25f}};
  BatchLoader loader(d, n, {.batch_size = 4, .shuffle = true, .seed = 1});
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  loader.StartEpoch(0);
  std::set<int32_t> seen;
  std::vector<int64_t> sizes;
  while (const Batch* b = loader.Next()) {
    sizes.push_back(b->images.n());
    ASSERT_EQ(b->images.shape(), (Shape{b->images.n(), 2, 3, 3}));
    for (int64_t k = 0; k < b->images.n(); ++k) {
      const int32_t example = b->labels[k];
      seen.insert(example);
      for (int64_t p = 0; p < 18; ++p) {
        const float expected = (d.image(example)[p] / 255.0f - n.mean[p % 2]) / n.stddev[p % 2];
        ASSERT_NEAR(b->images[k * 18 + p], expected, 1e-5);
      }
    }
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
  EXPECT_EQ(seen.size(), 10u);
}

std::vector<int32_t> EpochLabels(BatchLoader& loader, int epoch) {
  std::vector<int32_t> labels;
  loader.StartEpoch(epoch);
  while (const Batch* b = loader.Next()) labels.insert(labels.end(), b->labels.begin(), b->labels.end());
  return labels;
}

// Batches of each rank, as label lists.
std::vector<std::vector<int32_t>> RankBatches(const Dataset& d, int64_t batch, int rank, int ranks) {
  BatchLoader loader(d, Normalization::Of(d),
                     {.batch_size = batch, .seed = 5, .rank = rank, .ranks = ranks});
  std::vector<std::vector<int32_t>> batches;
  loader.StartEpoch(2);
  while (const Batch* b = loader.Next()) {
    EXPECT_EQ(b->global_size, std::min<int64_t>(batch, d.size() - batch * batches.size()));
    batches.push_back(b->labels);
  }
  EXPECT_EQ(static_cast<int64_t>(batches.size()), loader.batches_per_epoch());
  return batches;
}

TEST(BatchLoaderTest, RanksShareEachGlobalBatchDisjointlyInOrder) {
  const Dataset d = Ramp(53, 1, 2, 2);  // 6 global batches of 8, then 5 examples.
  const std::vector<std::vector<int32_t>> whole = RankBatches(d, 8, 0, 1);
  ASSERT_EQ(whole.size(), 7u);
  for (int ranks : {2, 3}) {
    std::vector<std::vector<std::vector<int32_t>>> shares;
    for (int r = 0; r < ranks; ++r) shares.push_back(RankBatches(d, 8, r, ranks));
    for (size_t b = 0; b < whole.size(); ++b) {
      std::vector<int32_t> joined;
      for (int r = 0; r < ranks; ++r) {
        ASSERT_EQ(shares[r].size(), whole.size());
        EXPECT_LE(std::abs(static_cast<int>(shares[r][b].size() * ranks - whole[b].size())), ranks);
        joined.insert(joined.end(), shares[r][b].begin(), shares[r][b].end());
      }
      EXPECT_EQ(joined, whole[b]) << ranks << " ranks, batch " << b;
    }
  }
  // 53 = 12 * 4 + 5: with 6 ranks the last global batch, 5 examples, is left out.
  EXPECT_EQ(RankBatches(d, 12, 0, 6).size(), 4u);
}

TEST(BatchLoaderTest, ShuffleIsSeededPerEpoch) {
  const Dataset d = Ramp(50, 1, 2, 2);
  const Normalization n = Normalization::Of(d);
  BatchLoader a(d, n, {.batch_size = 8, .seed = 3}), b(d, n, {.batch_size = 8, .seed = 3});
  const auto a0 = EpochLabels(a, 0), a1 = EpochLabels(a, 1);
  EXPECT_EQ(a0, EpochLabels(b, 0));
  EXPECT_NE(a0, a1);
  BatchLoader ordered(d, n, {.batch_size = 8, .shuffle = false});
  const auto o = EpochLabels(ordered, 0);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(o[i], i);
}

TEST(BatchLoaderTest, AugmentationIsDeterministicAndChangesImages) {
  const Dataset d = Ramp(16, 1, 8, 8);
  const Normalization n = Normalization::Of(d);
  const auto images = [&](uint64_t seed, bool augment) {
    BatchLoader loader(d, n, {.batch_size = 16, .shuffle = false, .augment = augment, .seed = seed});
    loader.StartEpoch(0);
    const Batch* b = loader.Next();
    return std::vector<float>(b->images.data(), b->images.data() + b->images.size());
  };
  EXPECT_EQ(images(1, true), images(1, true));
  EXPECT_NE(images(1, true), images(1, false));
}

TEST(BatchLoaderTest, RestartingMidEpochIsSafe) {
  const Dataset d = Ramp(40, 1, 2, 2);
  BatchLoader loader(d, Normalization::Of(d), {.batch_size = 4, .seed = 9});
  loader.StartEpoch(0);
  ASSERT_NE(loader.Next(), nullptr);
  const auto full = EpochLabels(loader, 1);
  EXPECT_EQ(full.size(), 40u);
}

}  // namespace
}  // namespace muppet
