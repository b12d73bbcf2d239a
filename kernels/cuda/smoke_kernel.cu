#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/smoke_kernel.h"

namespace muppet::cuda {
namespace {

__global__ void SaxpyKernel(float a, const float* x, const float* y, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a * x[i] + y[i];
}

}  // namespace

absl::StatusOr<std::vector<float>> Saxpy(float a, const std::vector<float>& x,
                                         const std::vector<float>& y) {
  if (x.size() != y.size()) return absl::InvalidArgumentError("x and y differ in size");
  const int n = static_cast<int>(x.size());
  const size_t bytes = x.size() * sizeof(float);
  float *dx = nullptr, *dy = nullptr, *dout = nullptr;
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMalloc(&dx, bytes));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMalloc(&dy, bytes));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMalloc(&dout, bytes));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpy(dx, x.data(), bytes, cudaMemcpyHostToDevice));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpy(dy, y.data(), bytes, cudaMemcpyHostToDevice));
  constexpr int kBlock = 256;
  SaxpyKernel<<<(n + kBlock - 1) / kBlock, kBlock>>>(a, dx, dy, dout, n);
  MUPPET_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  std::vector<float> out(x.size());
  MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpy(out.data(), dout, bytes, cudaMemcpyDeviceToHost));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaFree(dx));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaFree(dy));
  MUPPET_CUDA_RETURN_IF_ERROR(cudaFree(dout));
  return out;
}

}  // namespace muppet::cuda
