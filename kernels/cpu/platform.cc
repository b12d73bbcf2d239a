#include "kernels/cpu/platform.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace muppet::kernels {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "model name")) continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return "unknown CPU";
}

std::string OneDnnIsaName() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::all:
      return "all";
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic:
      return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
  }
  return "unknown";
}

KernelPlatform DetectKernelPlatform() {
  static const std::string* model = new std::string(CpuModel());
  static const std::string* onednn = new std::string(OneDnnIsaName());
  return {*model, ActiveIsa(), *onednn, ActiveInt8Route(), AmxInt8Active()};
}

std::string DescribeKernelPlatform(const KernelPlatform& p) {
  return absl::StrCat("cpu=\"", p.cpu_model, "\" isa=", IsaName(p.isa),
                      " amx=", p.amx ? "on" : "off", " onednn_isa=", p.onednn_isa,
                      " int8_route=", Int8RouteName(p.int8_route));
}

}  // namespace muppet::kernels
