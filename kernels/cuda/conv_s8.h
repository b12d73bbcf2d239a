// 8-bit fixed-point convolution on the integer tensor cores: the forward pass as one IMMA GEMM
// of im2col rows of the input's codes and the weights' codes (conv_rules.h has the lowering),
// exact int32 sums, scaled and biased in one epilogue kernel into channels-last FP32 output.
// Backward-data and backward-weights on the GPU are planned.
#ifndef MUPPET_KERNELS_CUDA_CONV_S8_H_
#define MUPPET_KERNELS_CUDA_CONV_S8_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/cuda/conv_rules.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm_s8.h"

namespace muppet::cuda {

// The int8 GEMM and the lowering's workspace, for one stream at a time. Not thread-safe.
class ConvS8 {
 public:
  // INTERNAL naming the call when cuBLASLt, its workspace or the device's attributes cannot be
  // had.
  static absl::StatusOr<ConvS8> Create();

  // Enqueues y = scale * conv(x, w) + bias on `stream` (device pointers): x the input's codes
  // (N x H x W x C), w the weights' codes (O x KH x KW x C), bias O floats or null, y
  // N x OH x OW x O floats, y[p, o] = float(exact int32 sum) * scale + bias[o]. INVALID_ARGUMENT
  // naming the field for a geometry CheckConvGeometry refuses, an x not 4-byte aligned, or a K
  // over MaxExactK(8, 8);
  // INTERNAL naming the CUDA or cuBLASLt call that failed, a workspace allocation included. The
  // workspace (the padded im2col matrix, the padded weights, the int32 sums; ConvGemmOf) grows to
  // the largest layer seen; growing waits for `stream` first. Asynchronous: y is ready once the
  // stream reaches this point, and the inputs must stay valid until then.
  absl::Status Forward(const ConvGeometry& g, const int8_t* x, const int8_t* w, float scale,
                       const float* bias, float* y, cudaStream_t stream);

 private:
  ConvS8(GemmS8 gemm, int sm_count) : gemm_(std::move(gemm)), sm_count_(sm_count) {}

  GemmS8 gemm_;
  int sm_count_ = 0;
  DeviceWorkspace workspace_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_CONV_S8_H_
