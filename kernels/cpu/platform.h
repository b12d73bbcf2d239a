// What the CPU kernels run on, for logs, benchmarks and test output: the CPU model, the ISA of
// muppet's own kernels and whether they use AMX, the ISA oneDNN dispatches to, and the route of
// 8-bit products.
#ifndef MUPPET_KERNELS_CPU_PLATFORM_H_
#define MUPPET_KERNELS_CPU_PLATFORM_H_

#include <string>

#include "kernels/cpu/gemm_s8.h"
#include "kernels/cpu/isa.h"

namespace muppet::kernels {

struct KernelPlatform {
  std::string cpu_model;   // /proc/cpuinfo's "model name", or "unknown CPU".
  Isa isa;                 // ActiveIsa(): muppet's kernels.
  std::string onednn_isa;  // oneDNN's effective ISA (the CPU capped by ONEDNN_MAX_CPU_ISA).
  Int8Route int8_route;    // ActiveInt8Route().
  bool amx;                // AmxInt8Active(): muppet's AMX int8 kernels.
};

// Reads the platform; cheap after the first call (the parts are computed once). Thread-safe.
KernelPlatform DetectKernelPlatform();

// The CPU's model name from /proc/cpuinfo, or "unknown CPU".
std::string CpuModel();

// oneDNN's effective ISA in oneDNN's own words ("avx2", "avx512_core_vnni", ...).
std::string OneDnnIsaName();

// logfmt fields: cpu="AMD EPYC 9R14" isa=avx512 amx=off onednn_isa=avx512_core_bf16
// int8_route=onednn-vnni.
std::string DescribeKernelPlatform(const KernelPlatform& platform);

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_PLATFORM_H_
