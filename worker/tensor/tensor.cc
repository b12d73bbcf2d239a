#include "worker/tensor/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/strings/str_join.h"

namespace muppet {
namespace {

constexpr size_t kAlignment = 64;  // One cache line; also an AVX-512 vector.

}  // namespace

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const Shape& shape) { return "[" + absl::StrJoin(shape, ", ") + "]"; }

void Tensor::FreeDeleter::operator()(float* p) const { std::free(p); }

Tensor::Tensor(Shape shape) {
  Resize(shape);
  SetZero();
}

Tensor Tensor::Clone() const {
  Tensor copy;
  copy.Resize(shape_);
  if (size_ > 0) std::memcpy(copy.data(), data(), size_ * sizeof(float));
  return copy;
}

void Tensor::Resize(const Shape& shape) {
  const int64_t size = NumElements(shape);
  if (size > capacity_) {
    const size_t bytes = (size * sizeof(float) + kAlignment - 1) / kAlignment * kAlignment;
    float* p = static_cast<float*>(std::aligned_alloc(kAlignment, bytes));
    if (p == nullptr) throw std::bad_alloc();
    data_.reset(p);
    capacity_ = size;
  }
  shape_ = shape;
  size_ = size;
}

void Tensor::Fill(float value) { std::fill_n(data_.get(), size_, value); }

}  // namespace muppet
