// The cuDNN plumbing the FP32 layers share (cudnn_conv.h, batch_norm.h, pooling.h): statuses
// checked into absl::Status, a handle bound to one stream with the scratch its calls share, and
// descriptors that destroy themselves. Tensors are float, logical (N, C, H, W), stored
// channels-last as the CPU engine stores them.
#ifndef MUPPET_KERNELS_CUDA_CUDNN_H_
#define MUPPET_KERNELS_CUDA_CUDNN_H_

#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"

namespace muppet::cuda {

// OK for CUDNN_STATUS_SUCCESS, else INTERNAL naming the failed expression and cuDNN's error.
absl::Status CudnnToStatus(cudnnStatus_t status, const char* expr, const char* file, int line);

}  // namespace muppet::cuda

// Evaluates a cuDNN call and returns its error as an absl::Status from the enclosing function.
#define MUPPET_CUDNN_RETURN_IF_ERROR(expr)                                                   \
  do {                                                                                       \
    if (absl::Status _st = ::muppet::cuda::CudnnToStatus((expr), #expr, __FILE__, __LINE__); \
        !_st.ok())                                                                           \
      return _st;                                                                            \
  } while (0)

namespace muppet::cuda {

// A cuDNN object destroyed with its owner (a descriptor). Move-only.
template <typename Handle, cudnnStatus_t (*Destroy)(Handle)>
class CudnnOwned {
 public:
  CudnnOwned() = default;
  explicit CudnnOwned(Handle handle) : handle_(handle) {}
  CudnnOwned(CudnnOwned&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  CudnnOwned& operator=(CudnnOwned&& other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  CudnnOwned(const CudnnOwned&) = delete;
  CudnnOwned& operator=(const CudnnOwned&) = delete;
  ~CudnnOwned() {
    if (handle_ != nullptr) Destroy(handle_);
  }
  Handle get() const { return handle_; }

 private:
  Handle handle_ = nullptr;
};

using TensorDescriptor = CudnnOwned<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDescriptor = CudnnOwned<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor =
    CudnnOwned<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;
using PoolingDescriptor = CudnnOwned<cudnnPoolingDescriptor_t, cudnnDestroyPoolingDescriptor>;

// A float tensor (n, c, h, w) stored channels-last. INVALID_ARGUMENT naming the dimension when
// one is below 1 or beyond cuDNN's int; INTERNAL naming the cuDNN call that failed.
absl::StatusOr<TensorDescriptor> NhwcTensor(int64_t n, int64_t c, int64_t h, int64_t w);

// `channels` floats, one per channel (1, C, 1, 1): biases and BatchNorm's per-channel tensors.
absl::StatusOr<TensorDescriptor> ChannelTensor(int64_t channels);

// OK if `value` (named `name`) lies in [1, INT32_MAX], the range of cuDNN's dimensions; else
// INVALID_ARGUMENT naming it.
absl::Status CheckCudnnDimension(const char* name, int64_t value);

// A cuDNN handle whose calls enqueue on one stream, and the scratch they share (one call at a
// time, in stream order). Not thread-safe; move-only.
class Cudnn {
 public:
  // INTERNAL naming the cuDNN call that failed (no device, no library).
  static absl::StatusOr<Cudnn> Create(cudaStream_t stream);
  Cudnn(Cudnn&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)),
        stream_(other.stream_),
        workspace_(std::move(other.workspace_)) {}
  Cudnn& operator=(Cudnn&&) = delete;
  Cudnn(const Cudnn&) = delete;
  ~Cudnn();

  cudnnHandle_t handle() const { return handle_; }
  cudaStream_t stream() const { return stream_; }
  // At least `bytes` of scratch, valid until the next call (DeviceWorkspace::Reserve).
  absl::StatusOr<char*> Scratch(int64_t bytes) {
    return workspace_.Reserve(std::max<int64_t>(bytes, 1), stream_);
  }

 private:
  Cudnn(cudnnHandle_t handle, cudaStream_t stream) : handle_(handle), stream_(stream) {}

  cudnnHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceWorkspace workspace_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_CUDNN_H_
