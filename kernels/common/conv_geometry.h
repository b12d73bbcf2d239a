// The shape of a 2-D convolution, shared by the CPU kernels (kernels/cpu/fixed_point_conv.h) and
// the CUDA kernels (kernels/cuda/tensor_core_conv.h). Tensors are channels-last: x is N x H x W x
// C, y is N x OH x OW x O, and weights are O x KH x KW x C (logical O, C, KH, KW).
#ifndef MUPPET_KERNELS_COMMON_CONV_GEOMETRY_H_
#define MUPPET_KERNELS_COMMON_CONV_GEOMETRY_H_

#include <cstdint>

#include "kernels/common/host_device.h"

namespace muppet::kernels {

struct ConvGeometry {
  int64_t n = 1, h = 1, w = 1, c = 1;  // Input.
  int64_t o = 1;                       // Output channels.
  int64_t kernel = 3;                  // Square kernel.
  int64_t stride = 1;
  int64_t padding = 0;
  MUPPET_HOST_DEVICE constexpr int64_t out_h() const {
    return (h + 2 * padding - kernel) / stride + 1;
  }
  MUPPET_HOST_DEVICE constexpr int64_t out_w() const {
    return (w + 2 * padding - kernel) / stride + 1;
  }
};

}  // namespace muppet::kernels

#endif  // MUPPET_KERNELS_COMMON_CONV_GEOMETRY_H_
