#include "kernels/cpu/isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace muppet::kernels {
namespace {

// $MUPPET_ISA, or null where it is unset or empty.
const char* ForcedIsa() {
  const char* forced = std::getenv("MUPPET_ISA");
  return forced == nullptr || *forced == '\0' ? nullptr : forced;
}

}  // namespace

Isa DetectIsa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl")) {
    return Isa::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
  return Isa::kScalar;
}

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (isa <= DetectIsa()) isas.push_back(isa);
  }
  return isas;
}

bool HasAvx512Vnni() {
  __builtin_cpu_init();
  return DetectIsa() == Isa::kAvx512 && __builtin_cpu_supports("avx512vnni");
}

bool HasAvx512Vbmi() {
  __builtin_cpu_init();
  return DetectIsa() == Isa::kAvx512 && __builtin_cpu_supports("avx512vbmi");
}

bool AmxInt8Active() {
  static const bool active = [] {
    if (ForcedIsa() != nullptr) return false;
    if (DetectIsa() != Isa::kAvx512) return false;
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    if ((edx & (1u << 24)) == 0 || (edx & (1u << 25)) == 0) return false;  // AMX-TILE, AMX-INT8.
    uint32_t xcr0, xcr0_high;
    asm("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
    if ((xcr0 & (3u << 17)) != (3u << 17)) return false;  // XTILECFG and XTILEDATA saved.
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtileData = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
  }();
  return active;
}

absl::StatusOr<Isa> ParseIsa(absl::string_view name) {
  Isa isa;
  if (name == "scalar") {
    isa = Isa::kScalar;
  } else if (name == "avx2") {
    isa = Isa::kAvx2;
  } else if (name == "avx512") {
    isa = Isa::kAvx512;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("ISA must be one of scalar, avx2, avx512, got \"", name, "\""));
  }
  if (isa > DetectIsa()) {
    return absl::InvalidArgumentError(
        absl::StrCat("this CPU lacks ", name, "; the best it has is ", IsaName(DetectIsa())));
  }
  return isa;
}

Isa ActiveIsa() {
  static const Isa isa = [] {
    const char* forced = ForcedIsa();
    if (forced == nullptr) return DetectIsa();
    absl::StatusOr<Isa> parsed = ParseIsa(forced);
    if (!parsed.ok()) {
      std::fprintf(stderr, "MUPPET_ISA: %s\n", std::string(parsed.status().message()).c_str());
      std::abort();
    }
    return *parsed;
  }();
  return isa;
}

absl::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

}  // namespace muppet::kernels
