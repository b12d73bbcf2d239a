// Job placement: which queued jobs start now, and on which workers. Pure logic: the coordinator
// passes in its queue and its workers' free devices and applies the placements it gets back.
//
// Order: higher priority first, FIFO (submission order) among equals. Gang placement: a job
// that needs N workers starts only when N distinct workers each have the ranks it needs free,
// never partly. A job that cannot start holds back every later job of its device kind, so a
// large job is never starved by a stream of small ones; jobs of another kind still start.
#ifndef MUPPET_SCHEDULER_PLACEMENT_H_
#define MUPPET_SCHEDULER_PLACEMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "muppet/v1/spec.pb.h"

namespace muppet::scheduler {

struct QueuedJob {
  std::string job_id;
  int32_t priority = 0;
  uint64_t sequence = 0;  // Submission order: smaller was submitted first.
  uint32_t workers = 1;   // Distinct workers the job spans.
  uint32_t devices_per_worker = 1;
  v1::DeviceKind device_kind = v1::DEVICE_KIND_CPU;
};

struct WorkerCapacity {
  std::string worker_id;
  v1::DeviceKind device_kind = v1::DEVICE_KIND_CPU;
  uint32_t free_devices = 0;
};

struct Placement {
  std::string job_id;
  std::vector<std::string> worker_ids;  // One per worker the job spans, in rank order.
};

// The jobs of `queue` that start now, in start order, with their workers. Workers are chosen
// best-fit (fewest free devices that suffice, then worker id), so large workers stay free for
// large jobs; the result depends only on the inputs.
std::vector<Placement> PlaceJobs(std::vector<QueuedJob> queue, std::vector<WorkerCapacity> workers);

}  // namespace muppet::scheduler

#endif  // MUPPET_SCHEDULER_PLACEMENT_H_
