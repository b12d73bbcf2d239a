// What a training run holds at its peak, estimated before it allocates, so that a job too big
// for the machine is refused with the numbers instead of taking the process down.
#ifndef MUPPET_WORKER_TRAIN_MEMORY_H_
#define MUPPET_WORKER_TRAIN_MEMORY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "muppet/v1/spec.pb.h"
#include "worker/data/dataset.h"
#include "worker/models/model.h"

namespace muppet {

struct MemoryEstimate {
  int64_t dataset_bytes = 0;     // Images and labels as stored, train and test.
  int64_t model_bytes = 0;       // Weights, gradients, momentum and the gradient window, and
                                 // the process itself (code and libraries).
  int64_t activation_bytes = 0;  // The layers' activations and gradients at the rank's batch,
                                 // and the loader's batches in flight.
  int64_t total() const { return dataset_bytes + model_bytes + activation_bytes; }
};

// The dataset's bytes where its spec alone gives them (synthetic data), before any is made;
// nullopt for file datasets, which their files bound.
std::optional<int64_t> SpecDatasetBytes(const v1::DatasetSpec& spec);

// The run's estimate once its data is loaded and its model built (parameters only), for
// `rank_batch` images a step on this rank.
MemoryEstimate EstimateMemory(const TrainTest& data, const Model& model, int64_t rank_batch);

// What this process may use: physical memory, or its cgroup's memory limit where lower.
int64_t ProcessMemoryLimit();

// RESOURCE_EXHAUSTED when `needed` bytes (described by `what`) exceed `limit`, with both in the
// message.
absl::Status CheckFits(int64_t needed, const std::string& what, int64_t limit);

// "1.5 GiB".
std::string FormatBytes(int64_t bytes);

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_MEMORY_H_
