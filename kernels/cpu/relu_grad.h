// The ReLU gradient as a branch-free bit mask: GCC if-converts a float select only in the
// simplest loops, and a branch on the sign of y mispredicts half the time.
#ifndef MUPPET_KERNELS_CPU_RELU_GRAD_H_
#define MUPPET_KERNELS_CPU_RELU_GRAD_H_

#include <bit>
#include <cstdint>

namespace muppet::kernels {

// Returns dy where the ReLU output y is positive, else 0.
inline float ReluGrad(float dy, float y) {
  // A float is positive exactly when its bits, read as a signed integer, are positive.
  const uint32_t keep = std::bit_cast<int32_t>(y) > 0 ? 0xFFFFFFFFu : 0u;
  return std::bit_cast<float>(std::bit_cast<uint32_t>(dy) & keep);
}

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_CPU_RELU_GRAD_H_
