// Data-parallel gradient reduction: during backward, sums every parameter's gradient over the
// ranks, in buckets, on a communication thread, so that the sums overlap the rest of backward
// (PyTorch DDP's shape).
//
// Buckets hold parameters in reverse model order (the order backward produces them), up to
// `bucket_bytes` each, and are launched in one fixed order on every rank: bucket k only after
// bucket k-1, and only once its last gradient is ready. At a fixed-point level the gradients that
// the layers would round (convolution and linear weights and biases) go through the fixed-point
// allreduce (shared grid, exact integer sums; worker/comm/fixed_point_allreduce.h) and
// BatchNorm's through a float allreduce in buckets of their own; in FP32 every bucket is float.
//
// Each rank's loss is normalised by the global batch, so the sum over ranks is the global
// batch's gradient: nothing is divided afterwards.
#ifndef MUPPET_WORKER_TRAIN_GRADIENT_REDUCER_H_
#define MUPPET_WORKER_TRAIN_GRADIENT_REDUCER_H_

#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kernels/cpu/quantize.h"
#include "worker/comm/communicator.h"
#include "worker/comm/fixed_point_allreduce.h"
#include "worker/nn/layer.h"

namespace muppet {

struct GradientReducerOptions {
  // resnet20's 1.1 MB of gradients make about five buckets: the first is summed while the first
  // stages still run backward (docs/SCALING.md has the share hidden).
  int64_t bucket_bytes = 256 << 10;
  absl::Duration timeout = absl::Seconds(60);  // For each collective.
  uint64_t seed = 0;                           // Of the fixed-point allreduce's rounding.
  kernels::Rounding rounding = kernels::Rounding::kStochastic;
};

// Totals since construction.
struct ReductionStats {
  int64_t buckets = 0;         // Bucket reductions run.
  int64_t wire_bytes = 0;      // Bytes this rank contributed to the allreduces.
  int64_t float_bytes = 0;     // What the same values cost as float32.
  double busy_seconds = 0;     // The communication thread's time in reductions.
  double exposed_seconds = 0;  // The time FinishStep waited after backward ended.
  int64_t saturated = 0;       // Codes the fixed-point allreduce clamped.
};

class GradientReducer {
 public:
  // Installs a gradient-ready hook on every parameter (which must outlive the reducer, as must
  // `comm`) and starts the communication thread. The reducer owns `comm` while a step runs.
  GradientReducer(std::vector<Parameter*> parameters, comm::Communicator& comm,
                  const GradientReducerOptions& options);
  // Removes the hooks and stops the thread.
  ~GradientReducer();

  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Arms the reducer for the backward pass of `step` at `bits` (32: float sums). With
  // `measure_norms`, each rank's own squared gradient norms are kept before they are summed.
  void BeginStep(int bits, uint64_t step, bool measure_norms);

  // Launches every bucket not yet launched and waits for all of them: each parameter's gradient
  // is then the sum over the ranks. The first collective error, if any, is returned; the
  // communicator is then unusable. Afterwards the caller may use the communicator again.
  absl::Status FinishStep();

  // This rank's squared norm of each parameter's gradient, before the sum, from the last step
  // that measured them.
  const std::vector<double>& local_squared_norms() const { return local_norms_; }

  ReductionStats stats() const;

 private:
  struct Bucket {
    std::vector<int> parameters;  // Indices, in reverse model order.
    bool fixed_point = false;     // Holds gradients a fixed-point level rounds.
    int64_t elements = 0;
  };

  void BuildBuckets(int64_t bucket_bytes);
  void OnGradientReady(int parameter);  // On the thread of Backward.
  // Queues the next buckets in order while they are complete.
  void LaunchReady() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();
  absl::Status Reduce(int bucket, int bits, uint64_t step, bool measure_norms);
  absl::Status ReduceFloat(const Bucket& bucket);

  std::vector<Parameter*> parameters_;
  comm::Communicator& comm_;
  const GradientReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;  // Parameter index -> bucket.

  mutable absl::Mutex mu_;
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  int bits_ ABSL_GUARDED_BY(mu_) = 32;
  uint64_t step_ ABSL_GUARDED_BY(mu_) = 0;
  bool measure_norms_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int> ready_ ABSL_GUARDED_BY(mu_);  // Gradients ready, per bucket.
  int next_launch_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<int> queue_ ABSL_GUARDED_BY(mu_);
  int done_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  ReductionStats stats_ ABSL_GUARDED_BY(mu_);

  // Used by the communication thread only, while a step runs.
  comm::FixedPointAllReducer fixed_point_;
  std::vector<float> flat_;
  std::vector<double> local_norms_;
  std::thread thread_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_GRADIENT_REDUCER_H_
