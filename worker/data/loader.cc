#include "worker/data/loader.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/random.h"

namespace muppet {
namespace {

constexpr int64_t kCropPadding = 4;

// The examples of `epoch` in order: a Fisher-Yates shuffle from the epoch's own stream.
std::vector<int64_t> EpochOrder(int64_t n, bool shuffle, uint64_t seed, int epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle) return order;
  Rng rng(CounterHash(seed, static_cast<uint64_t>(epoch)));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.Below(i + 1)]);
  return order;
}

}  // namespace

Normalization Normalization::Of(const Dataset& data) {
  const int64_t c = data.channels;
  std::vector<double> sum(c, 0.0), sum_sq(c, 0.0);
  for (size_t i = 0; i < data.pixels.size(); ++i) {
    const double v = data.pixels[i] / 255.0;
    sum[i % c] += v;
    sum_sq[i % c] += v * v;
  }
  const double count = static_cast<double>(data.pixels.size() / c);
  Normalization n;
  for (int64_t j = 0; j < c; ++j) {
    const double mean = sum[j] / count;
    n.mean.push_back(static_cast<float>(mean));
    n.stddev.push_back(
        static_cast<float>(std::max(std::sqrt(std::max(sum_sq[j] / count - mean * mean, 0.0)), 1e-3)));
  }
  return n;
}

BatchLoader::BatchLoader(const Dataset& data, Normalization normalization,
                         const LoaderOptions& options)
    : data_(data), normalization_(std::move(normalization)), options_(options), free_(kDepth + 1) {}

BatchLoader::~BatchLoader() { Stop(); }

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t full = data_.size() / options_.batch_size;
  const int64_t rest = data_.size() % options_.batch_size;
  return full + (rest > 0 && rest >= options_.ranks ? 1 : 0);
}

void BatchLoader::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (producer_.joinable()) producer_.join();
  std::lock_guard<std::mutex> lock(mu_);
  while (!ready_.empty()) {
    free_.push_back(std::move(ready_.front()));
    ready_.pop_front();
  }
  stop_ = false;
}

void BatchLoader::StartEpoch(int epoch) {
  Stop();
  remaining_ = batches_per_epoch();
  producer_ = std::thread([this, epoch] { Produce(epoch); });
}

void BatchLoader::Produce(int epoch) {
  const std::vector<int64_t> order = EpochOrder(data_.size(), options_.shuffle, options_.seed, epoch);
  for (int64_t b = 0; b < batches_per_epoch(); ++b) {
    Batch batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !free_.empty(); });
      if (stop_) return;
      batch = std::move(free_.back());
      free_.pop_back();
    }
    const int64_t first = b * options_.batch_size;
    const int64_t global = std::min(options_.batch_size, data_.size() - first);
    const int64_t begin = global * options_.rank / options_.ranks;
    const int64_t end = global * (options_.rank + 1) / options_.ranks;
    Fill(epoch, first + begin, end - begin, order, batch);
    batch.global_size = global;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.push_back(std::move(batch));
    }
    cv_.notify_all();
  }
}

void BatchLoader::Fill(int epoch, int64_t first, int64_t count, const std::vector<int64_t>& order,
                       Batch& batch) const {
  const int64_t c = data_.channels, h = data_.height, w = data_.width;
  batch.images.Resize({count, c, h, w});
  batch.labels.resize(count);
  // Normalised value of each possible byte, per channel: a table lookup per pixel.
  std::vector<float> table(256 * c);
  for (int64_t j = 0; j < c; ++j) {
    for (int v = 0; v < 256; ++v) {
      table[v * c + j] = (v / 255.0f - normalization_.mean[j]) / normalization_.stddev[j];
    }
  }
  for (int64_t b = 0; b < count; ++b) {
    const int64_t example = order[first + b];
    batch.labels[b] = data_.labels[example];
    const uint8_t* src = data_.image(example);
    float* dst = batch.images.data() + b * h * w * c;
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (options_.augment) {
      Rng rng(CounterHash(options_.seed ^ 0xA5A5A5A5ull,
                          static_cast<uint64_t>(epoch) * data_.size() + example));
      dy = static_cast<int64_t>(rng.Below(2 * kCropPadding + 1)) - kCropPadding;
      dx = static_cast<int64_t>(rng.Below(2 * kCropPadding + 1)) - kCropPadding;
      flip = rng.Uniform() < 0.5;
    }
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const int64_t sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;
        const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        for (int64_t j = 0; j < c; ++j) {
          const uint8_t v = inside ? src[(sy * w + sx) * c + j] : 0;  // Zero (black) padding.
          dst[(y * w + x) * c + j] = table[v * c + j];
        }
      }
    }
  }
}

const Batch* BatchLoader::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (current_.labels.size() > 0) free_.push_back(std::move(current_));
  current_ = Batch();
  cv_.notify_all();
  if (remaining_ == 0) return nullptr;
  cv_.wait(lock, [&] { return !ready_.empty(); });
  current_ = std::move(ready_.front());
  ready_.pop_front();
  --remaining_;
  return &current_;
}

}  // namespace muppet
