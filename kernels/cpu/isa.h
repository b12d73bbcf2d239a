// Which vector instruction set the CPU kernels use, chosen once at run time. The environment
// variable MUPPET_ISA (scalar, avx2, avx512) can force a lower one, so that tests cover every
// path on one machine; asking for more than the CPU has is refused with a message.
#ifndef MUPPET_KERNELS_CPU_ISA_H_
#define MUPPET_KERNELS_CPU_ISA_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace muppet::kernels {

enum class Isa {
  kScalar = 0,
  kAvx2 = 1,    // AVX2 + FMA.
  kAvx512 = 2,  // AVX-512 F, BW, VL (and VNNI where the GEMMs need it).
};

// The best instruction set this CPU supports.
Isa DetectIsa();

// Parses "scalar", "avx2" or "avx512" and checks the CPU supports it.
absl::StatusOr<Isa> ParseIsa(absl::string_view name);

// The instruction set kernels use by default: DetectIsa(), capped by $MUPPET_ISA when set.
// A bad value of MUPPET_ISA aborts at the first call with a clear message.
Isa ActiveIsa();

absl::string_view IsaName(Isa isa);

// Every instruction set this CPU can run, from scalar up to DetectIsa().
std::vector<Isa> SupportedIsas();

// True when this CPU has AVX512-VNNI (vpdpbusd, vpdpwssd).
bool HasAvx512Vnni();

// True when this CPU has AVX512-VBMI (vpermb), as Zen 4 does and Cascade Lake does not.
bool HasAvx512Vbmi();

// True when muppet's AMX int8 kernels may run: the CPU has AMX-TILE and AMX-INT8, the OS
// saves their state and granted this process the tile data (Linux's ARCH_REQ_XCOMP_PERM, asked
// once), and MUPPET_ISA is unset: any MUPPET_ISA, avx512 included, turns AMX off, so that the
// AVX-512 kernels can be tested on an AMX machine.
bool AmxInt8Active();

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_ISA_H_
