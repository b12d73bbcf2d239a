// 8-bit fixed-point convolution on the integer tensor cores, its three passes each one IMMA GEMM
// (conv_rules.h has the lowerings) with exact int32 sums, the reduction over pixels of the
// weight gradient chunked and added in int64, each output rounded once to FP32 and scaled by a
// power of two: the CPU's arithmetic (kernels/cpu/fixed_point_conv.h), so the outputs are the
// CPU's wherever the CPU's own sums are exact. Tensors are channels-last (conv_geometry.h).
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
  // naming the field for a geometry CheckConvGeometry refuses, an x not 4-byte aligned, or a
  // reduction over MaxExactK(8, 8) codes (K here, O in BackwardData);
  // INTERNAL naming the CUDA or cuBLASLt call that failed, a workspace allocation included. The
  // workspace (the padded operands and the sums; ConvGemmOf) grows to the largest layer seen;
  // growing waits for `stream` first. Asynchronous: y is ready once the stream reaches this point,
  // and the inputs must stay valid until then.
  absl::Status Forward(const ConvGeometry& g, const int8_t* x, const int8_t* w, float scale,
                       const float* bias, float* y, cudaStream_t stream);

  // Enqueues dx = scale * (the transposed convolution of dy with w) + addend: dy the output
  // gradient's codes (N x OH x OW x O), w the weights' codes, addend null or N x H x W x C floats
  // (another path's gradient of the same input), dx N x H x W x C floats. Errors, workspace and
  // asynchrony as for Forward.
  absl::Status BackwardData(const ConvGeometry& g, const int8_t* dy, const int8_t* w, float scale,
                            const float* addend, float* dx, cudaStream_t stream);

  // Enqueues dw = scale * (the correlation of dy with x), O x KH x KW x C floats, and, unless db
  // is null, db[o] = dy_scale * (the sum of dy's channel o). Errors, workspace and asynchrony as
  // for Forward; any number of pixels (the int32 sums are chunked, ExactKChunks).
  absl::Status BackwardWeights(const ConvGeometry& g, const int8_t* dy, const int8_t* x,
                               float scale, float dy_scale, float* dw, float* db,
                               cudaStream_t stream);

 private:
  ConvS8(GemmS8 gemm, int sm_count) : gemm_(std::move(gemm)), sm_count_(sm_count) {}

  GemmS8 gemm_;
  int sm_count_ = 0;
  DeviceWorkspace workspace_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_CONV_S8_H_
