// Element-wise layers, ReLU and (inverted) Dropout, and the element-wise sum the layers share.
#ifndef MUPPET_WORKER_NN_ELEMENTWISE_H_
#define MUPPET_WORKER_NN_ELEMENTWISE_H_

#include <cmath>
#include <cstdint>

#include "worker/nn/layer.h"

namespace muppet {

// out[i] = max(a[i] + b[i], floor), out resized to a's shape; out may be a (in place). a and b
// must have the same shape (checked).
void AddInto(const Tensor& a, const Tensor& b, Tensor& out, float floor = -INFINITY);

class Relu : public Layer {
 public:
  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override { return input; }

 private:
  Tensor output_;
  Tensor grad_input_;
};

// Zeroes each element with probability p in training and scales the rest by 1 / (1 - p); the
// identity in evaluation. The mask of element i at step s is a pure function of (seed, s, i), so
// it does not depend on the thread count.
class Dropout : public Layer {
 public:
  Dropout(double p, uint64_t seed);

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override { return input; }

 private:
  double p_;
  uint64_t seed_;
  uint64_t step_ = 0;
  Tensor mask_;  // 0 or 1 / (1 - p) per element, of the last training Forward.
  Tensor output_;
  Tensor grad_input_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_ELEMENTWISE_H_
