// What the tensor-core GEMMs (gemm_s8.h, gemm_f16.h) accept, and how K is cut so that no int32
// sum can overflow: plain C++, tested on every machine.
#ifndef MUPPET_KERNELS_CUDA_GEMM_RULES_H_
#define MUPPET_KERNELS_CUDA_GEMM_RULES_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace muppet::cuda {

// C (m x n, row-major) = A (m x k) * B (n x k)^T, A and B codes, row-major: both operands
// K-major (cuBLASLt's TN arrangement, the only one sm_90 runs on IMMA with plain layouts).
struct GemmShape {
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
};

// OK, or INVALID_ARGUMENT naming the first rule broken: every dimension at least 1 and a multiple
// of 4, and every pointer 16-byte aligned.
inline absl::Status CheckTensorCoreGemm(const GemmShape& s, const void* a, const void* b,
                                        const void* c) {
  for (const auto& [name, value] : {std::pair{"m", s.m}, {"n", s.n}, {"k", s.k}}) {
    if (value < 1 || value % 4 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": tensor-core GEMMs need a positive multiple of 4, got ", value));
    }
  }
  for (const auto& [name, p] : {std::pair{"a", a}, {"b", b}, {"c", c}}) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": must be 16-byte aligned, got address ", reinterpret_cast<uintptr_t>(p)));
    }
  }
  return absl::OkStatus();
}

// The longest K whose int32 sum of products of codes of `a_bits` and `b_bits` bits (sign
// included) cannot overflow, rounded down to a multiple of 4: (2^31 - 1) / (2^(a-1) * 2^(b-1)).
inline int64_t MaxExactK(int a_bits, int b_bits) {
  const int64_t largest_product = (int64_t{1} << (a_bits - 1)) * (int64_t{1} << (b_bits - 1));
  return INT32_MAX / largest_product / 4 * 4;
}

// [begin, end) ranges of K, each at most MaxExactK long, covering [0, k): their int32 results
// summed in int64 are exact. Every chunk but the last is a multiple of 16 long, so a chunk of a
// 16-byte-aligned row-major int8 operand starts 16-byte aligned, as the tensor cores need.
inline std::vector<std::pair<int64_t, int64_t>> ExactKChunks(int64_t k, int a_bits, int b_bits) {
  const int64_t step = MaxExactK(a_bits, b_bits) / 16 * 16;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  for (int64_t begin = 0; begin < k; begin += step) {
    chunks.emplace_back(begin, std::min(k, begin + step));
  }
  return chunks;
}

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_GEMM_RULES_H_
