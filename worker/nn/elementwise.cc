#include "worker/nn/elementwise.h"

#include <algorithm>
#include <cstring>

#include "base/check.h"
#include "base/random.h"
#include "kernels/cpu/relu_grad.h"
#include "worker/nn/parallel.h"

namespace muppet {

void AddInto(const Tensor& a, const Tensor& b, Tensor& out, float floor) {
  MUPPET_CHECK(a.shape() == b.shape())
      << ShapeString(a.shape()) << " vs " << ShapeString(b.shape());
  out.Resize(a.shape());
  ParallelFor(a.size(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = std::max(a[i] + b[i], floor);
  });
}

const Tensor& Relu::Forward(const Tensor& input, Mode mode) {
  output_.Resize(input.shape());
  const float* x = input.data();
  float* y = output_.data();
  ParallelFor(input.size(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] = std::max(x[i], 0.0f);
  });
  return output_;
}

const Tensor& Relu::Backward(const Tensor& grad_output) {
  grad_input_.Resize(output_.shape());
  const float* y = output_.data();
  const float* dy = grad_output.data();
  float* dx = grad_input_.data();
  ParallelFor(output_.size(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dx[i] = kernels::ReluGrad(dy[i], y[i]);
  });
  return grad_input_;
}

Dropout::Dropout(double p, uint64_t seed) : p_(p), seed_(seed) {}

const Tensor& Dropout::Forward(const Tensor& input, Mode mode) {
  output_.Resize(input.shape());
  if (mode == Mode::kEval || p_ == 0.0) {
    std::memcpy(output_.data(), input.data(), input.size() * sizeof(float));
    mask_.Resize({0});
    return output_;
  }
  mask_.Resize(input.shape());
  const uint64_t stream = CounterHash(seed_, step_++);
  const float keep_scale = static_cast<float>(1.0 / (1.0 - p_));
  ParallelFor(input.size(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      mask_[i] = UniformFromBits(CounterHash(stream, i)) < p_ ? 0.0f : keep_scale;
      output_[i] = input[i] * mask_[i];
    }
  });
  return output_;
}

const Tensor& Dropout::Backward(const Tensor& grad_output) {
  grad_input_.Resize(grad_output.shape());
  if (mask_.size() != grad_output.size()) {  // p == 0: the identity.
    std::memcpy(grad_input_.data(), grad_output.data(), grad_output.size() * sizeof(float));
    return grad_input_;
  }
  ParallelFor(grad_output.size(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) grad_input_[i] = grad_output[i] * mask_[i];
  });
  return grad_input_;
}

}  // namespace muppet
