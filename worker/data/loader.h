// Turns a Dataset into normalised float batches (N, C, H, W), prepared on a background thread
// while the trainer computes: seeded shuffling, random crop with padding, horizontal flip.
// Every choice is a pure function of (seed, epoch, example), so batches are identical across
// runs whatever the timing.
#ifndef MUPPET_WORKER_DATA_LOADER_H_
#define MUPPET_WORKER_DATA_LOADER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "worker/data/dataset.h"
#include "worker/tensor/tensor.h"

namespace muppet {

// Per-channel normalisation x' = (x / 255 - mean) / stddev.
struct Normalization {
  std::vector<float> mean;
  std::vector<float> stddev;
  // The statistics of `data`'s pixels (population standard deviation, floored at 1e-3).
  static Normalization Of(const Dataset& data);
};

struct Batch {
  Tensor images;                // (N, C, H, W), normalised: this rank's share.
  std::vector<int32_t> labels;  // N labels.
  int64_t global_size = 0;      // Examples in the global batch, every rank's share together.
};

struct LoaderOptions {
  int64_t batch_size = 128;  // The global batch, summed over the ranks.
  bool shuffle = true;
  bool augment = false;  // Random crop (4-pixel zero padding) and horizontal flip.
  uint64_t seed = 0;
  // Data parallel: every rank draws the same epoch order and takes the `rank`-th of `ranks`
  // contiguous, disjoint shares of each global batch (sizes differ by at most one).
  int rank = 0;
  int ranks = 1;
};

class BatchLoader {
 public:
  BatchLoader(const Dataset& data, Normalization normalization, const LoaderOptions& options);
  ~BatchLoader();

  // Starts preparing the batches of `epoch` (the last one may be smaller; with several ranks, a
  // last global batch with fewer examples than ranks is left out, so that no share is empty),
  // discarding any unconsumed batches of the previous epoch.
  void StartEpoch(int epoch);

  // The next batch of the epoch, or nullptr after the last. Valid until the following call.
  const Batch* Next();

  int64_t batches_per_epoch() const;

 private:
  void Produce(int epoch);
  void Fill(int epoch, int64_t first, int64_t count, const std::vector<int64_t>& order,
            Batch& batch) const;
  void Stop();

  const Dataset& data_;
  Normalization normalization_;
  LoaderOptions options_;

  static constexpr int kDepth = 2;  // Batches prepared ahead.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> ready_;
  std::vector<Batch> free_;
  Batch current_;
  int64_t remaining_ = 0;  // Batches of this epoch not yet returned by Next.
  bool stop_ = false;
  std::thread producer_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_DATA_LOADER_H_
