#include "scheduler/placement.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace muppet::scheduler {

std::vector<Placement> PlaceJobs(std::vector<QueuedJob> queue,
                                 std::vector<WorkerCapacity> workers) {
  std::stable_sort(queue.begin(), queue.end(), [](const QueuedJob& a, const QueuedJob& b) {
    return std::tie(b.priority, a.sequence) < std::tie(a.priority, b.sequence);
  });
  std::set<v1::DeviceKind> blocked;  // Kinds whose earliest waiting job could not start.
  std::vector<Placement> placements;
  for (const QueuedJob& job : queue) {
    if (blocked.count(job.device_kind) != 0) continue;
    std::vector<WorkerCapacity*> fits;
    for (WorkerCapacity& w : workers) {
      if (w.device_kind == job.device_kind && w.free_devices >= job.devices_per_worker) {
        fits.push_back(&w);
      }
    }
    if (job.workers == 0 || fits.size() < job.workers) {
      blocked.insert(job.device_kind);
      continue;
    }
    std::sort(fits.begin(), fits.end(), [](const WorkerCapacity* a, const WorkerCapacity* b) {
      return std::tie(a->free_devices, a->worker_id) < std::tie(b->free_devices, b->worker_id);
    });
    Placement placement{.job_id = job.job_id};
    for (uint32_t i = 0; i < job.workers; ++i) {
      fits[i]->free_devices -= job.devices_per_worker;
      placement.worker_ids.push_back(fits[i]->worker_id);
    }
    placements.push_back(std::move(placement));
  }
  return placements;
}

}  // namespace muppet::scheduler
