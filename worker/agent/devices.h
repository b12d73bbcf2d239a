// What a worker offers: its CPU (model, usable cores, ISA features) as rank slots, and its CUDA
// GPUs when the runtime finds any.
#ifndef MUPPET_WORKER_AGENT_DEVICES_H_
#define MUPPET_WORKER_AGENT_DEVICES_H_

#include <string>
#include <vector>

#include "muppet/v1/worker_info.pb.h"

namespace muppet {

// This machine's CPU as the kernels see it.
v1::CpuInfo DetectCpu();

// `cpu_slots` CPU devices of `cpu` (one per rank the worker offers), then every CUDA GPU.
// `why_no_gpu` receives the runtime's reason when there is none.
std::vector<v1::Device> DetectDevices(const v1::CpuInfo& cpu, int cpu_slots,
                                      std::string* why_no_gpu);

}  // namespace muppet

#endif  // MUPPET_WORKER_AGENT_DEVICES_H_
