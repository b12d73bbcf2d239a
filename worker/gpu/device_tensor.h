// A float tensor in device memory, with the CPU Tensor's shape and layout (channels-last for rank
// 4): grow-only storage that layers reuse step after step, as the CPU engine reuses its tensors.
#ifndef MUPPET_WORKER_GPU_DEVICE_TENSOR_H_
#define MUPPET_WORKER_GPU_DEVICE_TENSOR_H_

#include <cuda_runtime.h>

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device_buffer.h"
#include "worker/tensor/tensor.h"

namespace muppet::gpu {

class DeviceTensor {
 public:
  // Gives the tensor `shape`, allocating only when it needs more room than it has (the old memory
  // is freed by cudaFree, which waits for the device). The contents are unspecified afterwards.
  // INTERNAL naming the size when the device has no room.
  absl::Status Resize(const Shape& shape) {
    const int64_t size = NumElements(shape);
    if (!buffer_.has_value() || buffer_->size() < size) {
      buffer_.reset();
      absl::StatusOr<cuda::DeviceBuffer<float>> b = cuda::DeviceBuffer<float>::Allocate(size);
      if (!b.ok()) return b.status();
      buffer_.emplace(*std::move(b));
    }
    shape_ = shape;
    size_ = size;
    return absl::OkStatus();
  }

  // Resizes to `host`'s shape and enqueues the copy of its values on `stream`. `host` must stay
  // unchanged until the stream has passed the copy.
  absl::Status CopyFrom(const Tensor& host, cudaStream_t stream) {
    if (absl::Status s = Resize(host.shape()); !s.ok()) return s;
    MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(data(), host.data(), size_ * sizeof(float),
                                                cudaMemcpyHostToDevice, stream));
    return absl::OkStatus();
  }

  // Waits for `stream`, then copies the values into `host`, which must have this size.
  absl::Status CopyTo(Tensor& host, cudaStream_t stream) const {
    if (host.size() != size_) {
      return absl::InvalidArgumentError(absl::StrCat("copy of a device tensor of ",
                                                     ShapeString(shape_), " into one of ",
                                                     ShapeString(host.shape())));
    }
    MUPPET_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host.data(), data(), size_ * sizeof(float),
                                                cudaMemcpyDeviceToHost, stream));
    MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    return absl::OkStatus();
  }

  const Shape& shape() const { return shape_; }
  int64_t size() const { return size_; }
  int64_t dim(int i) const { return shape_[i]; }
  float* data() const { return buffer_.has_value() ? buffer_->data() : nullptr; }

 private:
  Shape shape_;
  int64_t size_ = 0;
  std::optional<cuda::DeviceBuffer<float>> buffer_;
};

}  // namespace muppet::gpu

#endif  // MUPPET_WORKER_GPU_DEVICE_TENSOR_H_
