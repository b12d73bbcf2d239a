#include <climits>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cudnn.h"

namespace muppet::cuda {

LazyLibrary& CudnnLibrary() {
  static LazyLibrary* const library = new LazyLibrary("libcudnn.so.9");
  return *library;
}

absl::Status CudnnToStatus(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status == CUDNN_STATUS_SUCCESS) return absl::OkStatus();
  const auto name = MUPPET_LAZY_FUNCTION(CudnnLibrary(), cudnnGetErrorString);
  return absl::InternalError(absl::StrCat(
      file, ":", line, ": ", call, " failed: ", name != nullptr ? name(status) : "(no message)",
      " (status ", static_cast<int>(status), ")"));
}

absl::Status CheckCudnnDimension(const char* name, int64_t value) {
  if (value >= 1 && value <= INT_MAX) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(name, ": cuDNN takes dimensions in [1, ", INT_MAX, "], got ", value));
}

absl::StatusOr<TensorDescriptor> NhwcTensor(int64_t n, int64_t c, int64_t h, int64_t w) {
  for (const auto& [name, value] : {std::pair{"n", n}, {"c", c}, {"h", h}, {"w", w}}) {
    if (absl::Status s = CheckCudnnDimension(name, value); !s.ok()) return s;
  }
  cudnnTensorDescriptor_t raw = nullptr;
  MUPPET_CUDNN_CALL(cudnnCreateTensorDescriptor, &raw);
  TensorDescriptor descriptor(raw);
  MUPPET_CUDNN_CALL(cudnnSetTensor4dDescriptor, raw, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT,
                    static_cast<int>(n), static_cast<int>(c), static_cast<int>(h),
                    static_cast<int>(w));
  return descriptor;
}

absl::StatusOr<TensorDescriptor> ChannelTensor(int64_t channels) {
  if (absl::Status s = CheckCudnnDimension("channels", channels); !s.ok()) return s;
  cudnnTensorDescriptor_t raw = nullptr;
  MUPPET_CUDNN_CALL(cudnnCreateTensorDescriptor, &raw);
  TensorDescriptor descriptor(raw);
  MUPPET_CUDNN_CALL(cudnnSetTensor4dDescriptor, raw, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                    static_cast<int>(channels), 1, 1);
  return descriptor;
}

absl::StatusOr<Cudnn> Cudnn::Create(cudaStream_t stream) {
  cudnnHandle_t handle = nullptr;
  MUPPET_CUDNN_CALL(cudnnCreate, &handle);
  Cudnn cudnn(handle, stream);
  MUPPET_CUDNN_CALL(cudnnSetStream, handle, stream);
  return cudnn;
}

Cudnn::~Cudnn() {
  if (handle_ == nullptr) return;
  if (const auto destroy = MUPPET_LAZY_FUNCTION(CudnnLibrary(), cudnnDestroy); destroy != nullptr) {
    destroy(handle_);
  }
}

}  // namespace muppet::cuda
