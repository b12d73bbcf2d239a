#include "worker/train/gradient_reducer.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "base/clock.h"
#include "base/random.h"
#include "proto/precision.h"

namespace muppet {

GradientReducer::GradientReducer(std::vector<Parameter*> parameters, comm::Communicator& comm,
                                 const GradientReducerOptions& options)
    : parameters_(std::move(parameters)),
      comm_(comm),
      options_(options),
      bucket_of_(parameters_.size()),
      local_norms_(parameters_.size(), 0.0) {
  BuildBuckets(options.bucket_bytes);
  {
    absl::MutexLock lock(&mu_);
    ready_.assign(buckets_.size(), 0);
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    parameters_[i]->on_gradient_ready = [this, i] { OnGradientReady(static_cast<int>(i)); };
  }
  thread_ = std::thread([this] { Loop(); });
}

GradientReducer::~GradientReducer() {
  for (Parameter* p : parameters_) p->on_gradient_ready = nullptr;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void GradientReducer::BuildBuckets(int64_t bucket_bytes) {
  // One open bucket per kind; a bucket closes once it reaches the size. Buckets are then ordered
  // by when backward completes them: by their first parameter in model order, last first.
  Bucket open[2];
  std::vector<Bucket> closed;
  for (int i = static_cast<int>(parameters_.size()) - 1; i >= 0; --i) {
    Bucket& b = open[parameters_[i]->fixed_point_gradient ? 1 : 0];
    b.fixed_point = parameters_[i]->fixed_point_gradient;
    b.parameters.push_back(i);
    b.elements += parameters_[i]->grad.size();
    if (b.elements * static_cast<int64_t>(sizeof(float)) >= bucket_bytes) {
      closed.push_back(std::move(b));
      b = Bucket();
    }
  }
  for (Bucket& b : open) {
    if (!b.parameters.empty()) closed.push_back(std::move(b));
  }
  std::stable_sort(closed.begin(), closed.end(), [](const Bucket& a, const Bucket& b) {
    return a.parameters.back() > b.parameters.back();
  });
  buckets_ = std::move(closed);
  for (size_t k = 0; k < buckets_.size(); ++k) {
    for (int i : buckets_[k].parameters) bucket_of_[i] = static_cast<int>(k);
  }
}

void GradientReducer::BeginStep(int bits, uint64_t step, bool measure_norms) {
  absl::MutexLock lock(&mu_);
  armed_ = true;
  bits_ = bits;
  step_ = step;
  measure_norms_ = measure_norms;
  std::fill(ready_.begin(), ready_.end(), 0);
  next_launch_ = 0;
  done_ = 0;
}

void GradientReducer::OnGradientReady(int parameter) {
  absl::MutexLock lock(&mu_);
  if (!armed_) return;
  ++ready_[bucket_of_[parameter]];
  LaunchReady();
}

void GradientReducer::LaunchReady() {
  while (next_launch_ < static_cast<int>(buckets_.size()) &&
         ready_[next_launch_] >= static_cast<int>(buckets_[next_launch_].parameters.size())) {
    queue_.push_back(next_launch_++);
  }
}

absl::Status GradientReducer::FinishStep() {
  const double start = SteadySeconds();
  absl::MutexLock lock(&mu_);
  // Gradients whose layer did not signal (a layer that failed) are launched as they are.
  for (size_t k = 0; k < buckets_.size(); ++k) {
    ready_[k] = static_cast<int>(buckets_[k].parameters.size());
  }
  LaunchReady();
  // Every bucket is queued now; the thread keeps a bucket queued until it is done with it, and
  // after an error drops the rest. An empty queue means no reduction is touching a gradient.
  mu_.Await(absl::Condition(
      +[](GradientReducer* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return r->queue_.empty(); },
      this));
  armed_ = false;
  stats_.exposed_seconds += SteadySeconds() - start;
  return error_;
}

void GradientReducer::Loop() {
  // One core's worth: the quantisation of a bucket overlaps backward, which has the rank's
  // threads (a thread's OpenMP team size is its own, not the trainer thread's).
  omp_set_num_threads(1);
  while (true) {
    int bucket, bits;
    uint64_t step;
    bool measure;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](GradientReducer* r)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return r->stop_ || !r->queue_.empty(); },
          this));
      if (stop_) return;
      bucket = queue_.front();
      bits = bits_;
      step = step_;
      measure = measure_norms_;
      if (!error_.ok()) {  // The communicator is broken: skip the rest of the step.
        queue_.pop_front();
        continue;
      }
    }
    const double start = SteadySeconds();
    const absl::Status s = Reduce(bucket, bits, step, measure);
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    stats_.busy_seconds += SteadySeconds() - start;
    ++stats_.buckets;
    if (!s.ok() && error_.ok()) error_ = s;
    ++done_;
  }
}

absl::Status GradientReducer::Reduce(int k, int bits, uint64_t step, bool measure_norms) {
  const Bucket& bucket = buckets_[k];
  if (measure_norms) {
    for (int i : bucket.parameters) {
      double sum = 0;
      for (float g : parameters_[i]->grad.span()) sum += static_cast<double>(g) * g;
      local_norms_[i] = sum;
    }
  }
  const int64_t float_bytes = bucket.elements * static_cast<int64_t>(sizeof(float));
  if (!bucket.fixed_point || bits >= kFp32Bits) {
    if (absl::Status s = ReduceFloat(bucket); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    stats_.wire_bytes += float_bytes;
    stats_.float_bytes += float_bytes;
    return absl::OkStatus();
  }
  std::vector<std::span<float>> tensors;
  for (int i : bucket.parameters) tensors.push_back(parameters_[i]->grad.span());
  absl::StatusOr<comm::FixedPointAllReduceStats> s =
      fixed_point_.Run(comm_, tensors,
                       {.bits = bits,
                        .rounding = options_.rounding,
                        .seed = options_.seed,
                        .stream = CounterHash(step, static_cast<uint64_t>(k)),
                        .timeout = options_.timeout});
  if (!s.ok()) return s.status();
  absl::MutexLock lock(&mu_);
  stats_.wire_bytes += s->wire_bytes;
  stats_.float_bytes += float_bytes;
  stats_.saturated += s->saturated;
  return absl::OkStatus();
}

absl::Status GradientReducer::ReduceFloat(const Bucket& bucket) {
  if (bucket.parameters.size() == 1) {
    return comm_.AllReduce(parameters_[bucket.parameters[0]]->grad.span(), comm::ReduceOp::kSum,
                           options_.timeout);
  }
  flat_.resize(bucket.elements);
  size_t offset = 0;
  for (int i : bucket.parameters) {
    const std::span<float> g = parameters_[i]->grad.span();
    std::memcpy(flat_.data() + offset, g.data(), g.size_bytes());
    offset += g.size();
  }
  if (absl::Status s =
          comm_.AllReduce(std::span<float>(flat_), comm::ReduceOp::kSum, options_.timeout);
      !s.ok()) {
    return s;
  }
  offset = 0;
  for (int i : bucket.parameters) {
    const std::span<float> g = parameters_[i]->grad.span();
    std::memcpy(g.data(), flat_.data() + offset, g.size_bytes());
    offset += g.size();
  }
  return absl::OkStatus();
}

ReductionStats GradientReducer::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace muppet
