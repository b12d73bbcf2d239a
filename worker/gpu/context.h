// What the GPU layers of one rank share (gpu_layers.h).
#ifndef MUPPET_WORKER_GPU_CONTEXT_H_
#define MUPPET_WORKER_GPU_CONTEXT_H_

#include <cuda_runtime.h>

#include <optional>

#include "kernels/cuda/cudnn.h"
#include "kernels/cuda/float_math.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/quantize.h"
#include "kernels/cuda/tensor_core_conv.h"

namespace muppet::gpu {

// What the layers of one rank share: its stream, the cuDNN and cuBLASLt handles bound to it, and
// the meaning of FP32. Outlives the layers; one thread at a time.
struct GpuContext {
  cudaStream_t stream = nullptr;
  cuda::Cudnn cudnn;
  cuda::LinearF32 linear;
  cuda::FloatMath math = cuda::FloatMath::kExact;
  cuda::QuantizeWorkspace quantize;
  // The fixed-point convolutions by code type, made at first use (each holds a cuBLASLt handle
  // and workspace, so the layers share them).
  std::optional<cuda::ConvS8> conv_s8;
  std::optional<cuda::ConvF16> conv_f16;
  std::optional<cuda::ConvS16> conv_s16;
};

}  // namespace muppet::gpu

#endif  // MUPPET_WORKER_GPU_CONTEXT_H_
