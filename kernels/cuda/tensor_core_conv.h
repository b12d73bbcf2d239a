// Fixed-point convolution on the tensor cores, one class per code type, each pass one GEMM
// (conv_rules.h has the lowerings):
// - ConvS8, 8-bit codes on IMMA (gemm_s8.h): exact int32 sums, the reduction over pixels of the
//   weight gradient chunked and added in int64;
// - ConvF16, codes of 9-12 bits as FP16 values on the FP16 tensor cores (gemm_f16.h): FP32
//   accumulation, exact while partial sums stay below 2^24 (gemm_f16.h bounds the rest);
// - ConvS16, codes of 13-16 bits as int16 on IMMA, byte-split (gemm_s16.h): exact int64 sums.
// Each output is rounded once to FP32 and scaled by a power of two. For 8-bit codes that is the
// CPU's arithmetic (kernels/cpu/fixed_point_conv.h), so the outputs are the CPU's wherever the
// CPU's own sums are exact; at 9-16 bits the CPU adds blocks of exact sums in FP32, so the two
// agree within that rounding. Tensors are channels-last (conv_geometry.h).
#ifndef MUPPET_KERNELS_CUDA_TENSOR_CORE_CONV_H_
#define MUPPET_KERNELS_CUDA_TENSOR_CORE_CONV_H_

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/cuda/conv_rules.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm_f16.h"
#include "kernels/cuda/gemm_s16.h"
#include "kernels/cuda/gemm_s8.h"

namespace muppet::cuda {

// The GEMM of each code type and the type of its sums.
template <typename Code>
struct TensorCoreGemm;
template <>
struct TensorCoreGemm<int8_t> {
  using Gemm = GemmS8;
  using Sum = int32_t;
};
template <>
struct TensorCoreGemm<__half> {
  using Gemm = GemmF16;
  using Sum = float;
};
template <>
struct TensorCoreGemm<int16_t> {
  using Gemm = GemmS16;
  using Sum = int64_t;
};

// The GEMM and the lowering's workspace, for one stream at a time. Not thread-safe.
template <typename Code>
class TensorCoreConv {
 public:
  // INTERNAL naming the call when cuBLASLt, its workspace or the device's attributes cannot be
  // had.
  static absl::StatusOr<TensorCoreConv> Create();

  // Enqueues y = scale * conv(x, w) + bias on `stream` (device pointers): x the input's codes
  // (N x H x W x C), w the weights' codes (O x KH x KW x C), bias O floats or null, y
  // N x OH x OW x O floats, y[p, o] = float(sum) * scale + bias[o]. INVALID_ARGUMENT naming the
  // field for a geometry CheckConvGeometry refuses, an x not 4-byte aligned, or (8-bit) a
  // reduction over MaxExactK(8, 8) codes (K here, O in BackwardData); INTERNAL naming the CUDA or
  // cuBLASLt call that failed, a workspace allocation included. The workspace (the padded
  // operands and the sums; ConvGemmOf) grows to the largest layer seen; growing waits for
  // `stream` first. Asynchronous: y is ready once the stream reaches this point, and the inputs
  // must stay valid until then.
  absl::Status Forward(const ConvGeometry& g, const Code* x, const Code* w, float scale,
                       const float* bias, float* y, cudaStream_t stream);

  // Enqueues dx = scale * (the transposed convolution of dy with w) + addend: dy the output
  // gradient's codes (N x OH x OW x O), w the weights' codes, addend null or N x H x W x C floats
  // (another path's gradient of the same input), dx N x H x W x C floats. Errors, workspace and
  // asynchrony as for Forward.
  absl::Status BackwardData(const ConvGeometry& g, const Code* dy, const Code* w, float scale,
                            const float* addend, float* dx, cudaStream_t stream);

  // Enqueues dw = scale * (the correlation of dy with x), O x KH x KW x C floats, and, unless db
  // is null, db[o] = dy_scale * (the sum of dy's channel o). Errors, workspace and asynchrony as
  // for Forward; any number of pixels.
  absl::Status BackwardWeights(const ConvGeometry& g, const Code* dy, const Code* x, float scale,
                               float dy_scale, float* dw, float* db, cudaStream_t stream);

 private:
  using Gemm = typename TensorCoreGemm<Code>::Gemm;
  using Sum = typename TensorCoreGemm<Code>::Sum;

  TensorCoreConv(Gemm gemm, int sm_count) : gemm_(std::move(gemm)), sm_count_(sm_count) {}

  // dw's exact sums (o_pad x k_pad) into `sums`: one GEMM, or for 8-bit codes chunks of pixels
  // whose int32 sums add into int64 `total`.
  absl::Status WeightSums(const ConvGemm& s, const Code* dy_t, const Code* cols_t, Sum* sums,
                          long long* total, cudaStream_t stream);

  Gemm gemm_;
  int sm_count_ = 0;
  DeviceWorkspace workspace_;
};

extern template class TensorCoreConv<int8_t>;
extern template class TensorCoreConv<__half>;
extern template class TensorCoreConv<int16_t>;

using ConvS8 = TensorCoreConv<int8_t>;
using ConvF16 = TensorCoreConv<__half>;
using ConvS16 = TensorCoreConv<int16_t>;

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_TENSOR_CORE_CONV_H_
