// A dense float tensor that owns 64-byte-aligned memory.
//
// Rank-4 tensors have the logical shape (N, C, H, W) and are stored channels-last (NHWC), like
// PyTorch's channels_last memory format: oneDNN's JIT convolutions run 3-5x faster on this
// layout than on plain NCHW on this machine (docs/ENGINE.md), and each pixel's channels are
// contiguous for per-channel operations and the fixed-point kernels. Other ranks are row-major.
#ifndef MUPPET_WORKER_TENSOR_TENSOR_H_
#define MUPPET_WORKER_TENSOR_TENSOR_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace muppet {

using Shape = std::vector<int64_t>;

// Returns the number of elements of `shape` (1 for rank 0).
int64_t NumElements(const Shape& shape);

// Returns "[2, 3, 4]".
std::string ShapeString(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // A zero-filled tensor of `shape`.
  explicit Tensor(Shape shape);

  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  // Returns a deep copy.
  Tensor Clone() const;

  // Gives the tensor `shape`, reallocating only when it needs more memory than it has. The
  // contents are unspecified afterwards (layers reuse buffers across iterations).
  void Resize(const Shape& shape);

  void Fill(float value);
  void SetZero() { Fill(0.0f); }

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t size() const { return size_; }

  // Rank-4 accessors: logical (N, C, H, W).
  int64_t n() const { return shape_[0]; }
  int64_t c() const { return shape_[1]; }
  int64_t h() const { return shape_[2]; }
  int64_t w() const { return shape_[3]; }
  // Offset of logical element (n, c, y, x) of a rank-4 tensor in channels-last storage.
  int64_t Offset(int64_t n, int64_t c, int64_t y, int64_t x) const {
    return ((n * shape_[2] + y) * shape_[3] + x) * shape_[1] + c;
  }

  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  std::span<float> span() { return {data_.get(), static_cast<size_t>(size_)}; }
  std::span<const float> span() const { return {data_.get(), static_cast<size_t>(size_)}; }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }

 private:
  struct FreeDeleter {
    void operator()(float* p) const;
  };

  Shape shape_;
  int64_t size_ = 0;
  int64_t capacity_ = 0;
  std::unique_ptr<float[], FreeDeleter> data_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TENSOR_TENSOR_H_
