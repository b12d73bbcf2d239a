// Device memory with RAII ownership: a typed array on the current device, freed with its owner,
// the copies to and from host memory, and a workspace that grows; every CUDA call checked into a
// status.
#ifndef MUPPET_KERNELS_CUDA_DEVICE_BUFFER_H_
#define MUPPET_KERNELS_CUDA_DEVICE_BUFFER_H_

#include <cuda_runtime.h>

#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/check.h"

namespace muppet::cuda {

template <typename T>
class DeviceBuffer {
 public:
  // `size` elements, uninitialised. INTERNAL naming the size when the device has no room.
  static absl::StatusOr<DeviceBuffer> Allocate(int64_t size) {
    T* data = nullptr;
    if (const cudaError_t e = cudaMalloc(&data, static_cast<size_t>(size) * sizeof(T));
        e != cudaSuccess) {
      return absl::InternalError(absl::StrCat("cudaMalloc of ", size * sizeof(T),
                                              " bytes failed: ", cudaGetErrorString(e)));
    }
    return DeviceBuffer(data, size);
  }

  // A copy of `host` on the device (synchronous).
  static absl::StatusOr<DeviceBuffer> CopyOf(std::span<const T> host) {
    absl::StatusOr<DeviceBuffer> buffer = Allocate(static_cast<int64_t>(host.size()));
    if (!buffer.ok()) return buffer.status();
    MUPPET_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(buffer->data(), host.data(), host.size_bytes(), cudaMemcpyHostToDevice));
    return buffer;
  }

  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);  // An error here is an earlier asynchronous one.
  }

  T* data() const { return data_; }
  int64_t size() const { return size_; }

  // The whole buffer on the host (synchronous).
  absl::StatusOr<std::vector<T>> ToHost() const {
    std::vector<T> host(static_cast<size_t>(size_));
    MUPPET_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(host.data(), data_, host.size() * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  DeviceBuffer(T* data, int64_t size) : data_(data), size_(size) {}

  T* data_ = nullptr;
  int64_t size_ = 0;
};

// Scratch device memory that grows to the largest request and is kept for the next: for kernels
// that run the same shapes step after step. One stream at a time; not thread-safe.
class DeviceWorkspace {
 public:
  // At least `bytes` of device memory, valid until the next Reserve. Growing first waits for
  // `stream`, whose queued work may still use the old memory. INTERNAL naming the call or the
  // size when the wait or the allocation fails.
  absl::StatusOr<char*> Reserve(int64_t bytes, cudaStream_t stream) {
    if (buffer_.has_value() && buffer_->size() >= bytes) return buffer_->data();
    MUPPET_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    buffer_.reset();
    absl::StatusOr<DeviceBuffer<char>> buffer = DeviceBuffer<char>::Allocate(bytes);
    if (!buffer.ok()) return buffer.status();
    buffer_.emplace(*std::move(buffer));
    return buffer_->data();
  }

 private:
  std::optional<DeviceBuffer<char>> buffer_;
};

// Pieces of a workspace, each 256-byte aligned, handed out in order: `Bytes` sizes the workspace
// for the pieces, `Take` hands them out.
class WorkspaceCarver {
 public:
  explicit WorkspaceCarver(char* base) : at_(base) {}

  // The bytes a workspace needs for pieces of these sizes in bytes.
  template <typename... Sizes>
  static int64_t Bytes(Sizes... bytes) {
    return (Align(static_cast<int64_t>(bytes)) + ...);
  }

  // The next piece, of `count` elements.
  template <typename T>
  T* Take(int64_t count) {
    return reinterpret_cast<T*>(std::exchange(at_, at_ + Align(count * int64_t{sizeof(T)})));
  }

 private:
  static int64_t Align(int64_t bytes) { return (bytes + 255) / 256 * 256; }

  char* at_;
};

}  // namespace muppet::cuda

#endif  // MUPPET_KERNELS_CUDA_DEVICE_BUFFER_H_
