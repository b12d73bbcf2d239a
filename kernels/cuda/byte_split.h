// Codes of 9-16 bits on the integer tensor cores, exactly: each code split into two int8 bytes,
// so that a product of two codes is four int8 products (gemm_s16.h). Plain C++, __host__
// __device__ under nvcc, so the arithmetic the GPU runs is tested on every machine.
//
// A code c is shifted to d = c - 128 and split as d = 256 h + l, with l the low byte of d read as
// signed and h = (d - l) / 256. For every 16-bit code, c in [-32768, 32767], d lies in
// [-32896, 32639] = [-128 x 256 - 128, 127 x 256 + 127], so h and l are both int8. (Split without
// the shift, c = 32767 would need h = 128.) Over k terms, since c = d + 128,
//   sum ca cb = 65536 sum ha hb + 256 (sum ha lb + sum la hb) + sum la lb
//               + 128 (sum ca + sum cb) - 16384 k,
// where sum ca and sum cb are the codes' own sums: the row sums of A and of B.
#ifndef MUPPET_KERNELS_CUDA_BYTE_SPLIT_H_
#define MUPPET_KERNELS_CUDA_BYTE_SPLIT_H_

#include <cstdint>

#include "kernels/common/host_device.h"

namespace muppet::cuda {

inline constexpr int32_t kSplitShift = 128;

struct SplitCode {
  int8_t high;
  int8_t low;
};

// The two bytes of `code` (any int16), as above.
MUPPET_HOST_DEVICE constexpr SplitCode SplitCode16(int16_t code) {
  const int32_t d = int32_t{code} - kSplitShift;
  const int32_t low = ((d & 0xff) ^ 0x80) - 0x80;  // The low byte, sign-extended.
  return {static_cast<int8_t>((d - low) / 256), static_cast<int8_t>(low)};
}

// The code whose bytes these are: the inverse of SplitCode16.
MUPPET_HOST_DEVICE constexpr int32_t JoinCode16(SplitCode s) {
  return 256 * int32_t{s.high} + s.low + kSplitShift;
}

// One chunk of K's share of sum ca cb, from the int32 sums of its four byte products.
MUPPET_HOST_DEVICE constexpr int64_t SplitPartial(int32_t high_high, int32_t high_low,
                                                  int32_t low_high, int32_t low_low) {
  return 65536 * int64_t{high_high} + 256 * (int64_t{high_low} + low_high) + low_low;
}

// The shift's share of sum ca cb over all k terms, from the codes' sums along K.
MUPPET_HOST_DEVICE constexpr int64_t SplitShiftTerm(int64_t sum_a, int64_t sum_b, int64_t k) {
  return kSplitShift * (sum_a + sum_b) - int64_t{kSplitShift} * kSplitShift * k;
}

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_BYTE_SPLIT_H_
