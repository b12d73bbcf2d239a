// Checks of what workers declare and report, before any of it is stored, shown or exported: a
// worker (or anyone holding a worker token) must not be able to put a NaN loss, an accuracy of 5
// or a negative time into a job's history, its metrics or its result, nor make the worker list
// too large to answer. Pure functions.
#ifndef MUPPET_SERVER_WORKER_CHECKS_H_
#define MUPPET_SERVER_WORKER_CHECKS_H_

#include "absl/status/status.h"
#include "muppet/v1/job.pb.h"
#include "muppet/v1/worker.pb.h"

namespace muppet::server {

// The most devices a worker may declare: one CPU device per rank slot, plus its GPUs.
inline constexpr int kMaxWorkerDevices = 1024;

// A registration's declarations, bounded: 1 to kMaxWorkerDevices devices of kind CPU or CUDA,
// no (kind, index) twice, indexes below kMaxWorkerDevices; short names, versions and ISA lists;
// at most 65536 cores. INVALID_ARGUMENT naming the first field at fault. (The name and labels
// are checked by the coordinator.)
absl::Status CheckDeclaration(const v1::RegisterWorkerRequest& request);

// A policy epoch's metrics: losses finite and >= 0, accuracies in [0, 1], times, rates and
// ratios finite and >= 0. INVALID_ARGUMENT naming the first field at fault (under `metrics.`)
// and its value.
absl::Status CheckEpochMetrics(const v1::EpochMetrics& metrics);

// A result reported as a success of `job`: its values in range as above (under `result.`), and
// the training complete: with policy epochs of whole epochs (no policy_epoch_iterations), one
// report per epoch of the spec; otherwise at least one report. FAILED_PRECONDITION when the
// epochs are short, naming how many were reported of how many.
absl::Status CheckSuccess(const v1::JobResult& result, const v1::Job& job);

}  // namespace muppet::server

#endif  // MUPPET_SERVER_WORKER_CHECKS_H_
