// The cuDNN plumbing the FP32 layers share (cudnn_conv.h, batch_norm.h, pooling.h): cuDNN loaded
// at its first use (lazy_library.h), statuses checked into absl::Status, a handle bound to one
// stream with the scratch its calls share, and descriptors that destroy themselves. Tensors are
// float, logical (N, C, H, W), stored channels-last as the CPU engine stores them.
#ifndef MUPPET_KERNELS_CUDA_CUDNN_H_
#define MUPPET_KERNELS_CUDA_CUDNN_H_

#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/lazy_library.h"

namespace muppet::cuda {

// libcudnn.so.9, opened at the first cuDNN call.
LazyLibrary& CudnnLibrary();

// OK for CUDNN_STATUS_SUCCESS, else INTERNAL naming the failed call and cuDNN's error.
absl::Status CudnnToStatus(cudnnStatus_t status, const char* call, const char* file, int line);

}  // namespace muppet::cuda

// Calls cuDNN's `fn` with the arguments and returns its error as an absl::Status from the
// enclosing function: FAILED_PRECONDITION when cuDNN cannot be loaded, INTERNAL for a cuDNN
// error.
#define MUPPET_CUDNN_CALL(fn, ...)                                                    \
  do {                                                                                \
    const auto _fn = MUPPET_LAZY_FUNCTION(::muppet::cuda::CudnnLibrary(), fn);        \
    if (_fn == nullptr) return ::muppet::cuda::CudnnLibrary().Missing(#fn);           \
    if (absl::Status _st =                                                            \
            ::muppet::cuda::CudnnToStatus(_fn(__VA_ARGS__), #fn, __FILE__, __LINE__); \
        !_st.ok())                                                                    \
      return _st;                                                                     \
  } while (0)

namespace muppet::cuda {

// Destroys a cuDNN object with `fn` where cuDNN is loaded (a handle exists only then).
#define MUPPET_CUDNN_DESTROYER(Name, Handle, fn)                                            \
  struct Name {                                                                             \
    void operator()(Handle handle) const {                                                  \
      if (const auto f = MUPPET_LAZY_FUNCTION(CudnnLibrary(), fn); f != nullptr) f(handle); \
    }                                                                                       \
  }
MUPPET_CUDNN_DESTROYER(DestroyTensor, cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor);
MUPPET_CUDNN_DESTROYER(DestroyFilter, cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor);
MUPPET_CUDNN_DESTROYER(DestroyConvolution, cudnnConvolutionDescriptor_t,
                       cudnnDestroyConvolutionDescriptor);
MUPPET_CUDNN_DESTROYER(DestroyPooling, cudnnPoolingDescriptor_t, cudnnDestroyPoolingDescriptor);
#undef MUPPET_CUDNN_DESTROYER

// A cuDNN object destroyed with its owner (a descriptor). Move-only.
template <typename Handle, typename Destroy>
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
    if (handle_ != nullptr) Destroy()(handle_);
  }
  Handle get() const { return handle_; }

 private:
  Handle handle_ = nullptr;
};

using TensorDescriptor = CudnnOwned<cudnnTensorDescriptor_t, DestroyTensor>;
using FilterDescriptor = CudnnOwned<cudnnFilterDescriptor_t, DestroyFilter>;
using ConvolutionDescriptor = CudnnOwned<cudnnConvolutionDescriptor_t, DestroyConvolution>;
using PoolingDescriptor = CudnnOwned<cudnnPoolingDescriptor_t, DestroyPooling>;

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
  // FAILED_PRECONDITION naming the library when cuDNN cannot be loaded; INTERNAL naming the cuDNN
  // call that failed (no device).
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
