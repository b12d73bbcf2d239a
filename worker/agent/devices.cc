#include "worker/agent/devices.h"

#include <unistd.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/cpu.h"
#include "kernels/cpu/platform.h"
#include "kernels/cuda/device.h"

namespace muppet {

v1::CpuInfo DetectCpu() {
  v1::CpuInfo cpu;
  const kernels::KernelPlatform platform = kernels::DetectKernelPlatform();
  cpu.set_model(platform.cpu_model);
  cpu.set_cores(UsableCores());
  __builtin_cpu_init();
  // The features the kernels dispatch on (kernels/cpu/isa.h), as the kernel names them.
  const std::pair<const char*, bool> features[] = {
      {"avx2", __builtin_cpu_supports("avx2")},
      {"fma", __builtin_cpu_supports("fma")},
      {"avx512f", __builtin_cpu_supports("avx512f")},
      {"avx512bw", __builtin_cpu_supports("avx512bw")},
      {"avx512vl", __builtin_cpu_supports("avx512vl")},
      {"avx512_vnni", __builtin_cpu_supports("avx512vnni")},
      {"avx512_bf16", __builtin_cpu_supports("avx512bf16")},
      {"amx_int8", kernels::AmxInt8Active()},  // The CPU has it, the OS granted it, not capped.
  };
  for (const auto& [name, present] : features) {
    if (present) cpu.add_isa_features(name);
  }
  cpu.set_kernel_isa(std::string(kernels::IsaName(platform.isa)));
  cpu.set_onednn_isa(platform.onednn_isa);
  cpu.set_int8_route(std::string(kernels::Int8RouteName(platform.int8_route)));
  return cpu;
}

std::vector<v1::Device> DetectDevices(const v1::CpuInfo& cpu, int cpu_slots,
                                      std::string* why_no_gpu) {
  std::vector<v1::Device> devices;
  const uint64_t memory = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                          static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE));
  for (int i = 0; i < cpu_slots; ++i) {
    v1::Device& d = devices.emplace_back();
    d.set_kind(v1::DEVICE_KIND_CPU);
    d.set_index(i);
    d.set_name(cpu.model());
    d.set_memory_bytes(memory / cpu_slots);
  }
  absl::StatusOr<std::vector<cuda::DeviceInfo>> gpus = cuda::ListDevices(why_no_gpu);
  if (!gpus.ok()) {
    if (why_no_gpu != nullptr) *why_no_gpu = std::string(gpus.status().message());
    return devices;
  }
  for (const cuda::DeviceInfo& gpu : *gpus) {
    v1::Device& d = devices.emplace_back();
    d.set_kind(v1::DEVICE_KIND_CUDA);
    d.set_index(gpu.index);
    d.set_name(gpu.name);
    d.set_memory_bytes(gpu.memory_bytes);
    d.set_compute_capability(gpu.compute_capability);
  }
  return devices;
}

}  // namespace muppet
