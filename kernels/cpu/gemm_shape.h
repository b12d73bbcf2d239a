// The shape of an integer GEMM C (m x n) = A (m x k) x B (k x n), all row-major unless
// transposed. Shared by the int8 and int16 GEMMs.
#ifndef MUPPET_KERNELS_CPU_GEMM_SHAPE_H_
#define MUPPET_KERNELS_CPU_GEMM_SHAPE_H_

#include <cstdint>

namespace muppet::kernels {

struct GemmShape {
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  bool a_transposed = false;  // A stored k x m (row-major) instead of m x k.
  bool b_transposed = false;  // B stored n x k instead of k x n.
};

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_GEMM_SHAPE_H_
