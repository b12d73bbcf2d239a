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

// A(i, p) and B(p, j) in their storage orders, and 0 past the matrix (packing pads with it).
template <typename Code>
Code GemmA(const GemmShape& s, const Code* a, int64_t i, int64_t p) {
  if (i >= s.m || p >= s.k) return 0;
  return s.a_transposed ? a[p * s.m + i] : a[i * s.k + p];
}

template <typename Code>
Code GemmB(const GemmShape& s, const Code* b, int64_t p, int64_t j) {
  if (p >= s.k || j >= s.n) return 0;
  return s.b_transposed ? b[j * s.k + p] : b[p * s.n + j];
}

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_GEMM_SHAPE_H_
