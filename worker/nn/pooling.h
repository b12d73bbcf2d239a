// Pooling layers: max and average pooling through oneDNN, and global average pooling.
#ifndef MUPPET_WORKER_NN_POOLING_H_
#define MUPPET_WORKER_NN_POOLING_H_

#include <map>
#include <memory>

#include "worker/nn/layer.h"

namespace muppet {

struct PoolOptions {
  int64_t kernel = 2;  // Square window.
  int64_t stride = 2;
  int64_t padding = 0;
  // Output size rounds up (PyTorch's ceil_mode), as GoogLeNet's pools need.
  bool ceil_mode = false;
};

// Max or average pooling over square windows. Average pooling counts padding as zeros
// (PyTorch's count_include_pad=True).
class Pool2d : public Layer {
 public:
  enum class Kind { kMax, kAverage };
  Pool2d(Kind kind, const PoolOptions& options);
  ~Pool2d() override;

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override;

 private:
  struct Plan;
  Plan& PlanFor(const Shape& input);

  Kind kind_;
  PoolOptions options_;
  std::map<Shape, std::unique_ptr<Plan>> plans_;
  Plan* plan_ = nullptr;
  Shape input_shape_;
  Tensor output_;
  Tensor grad_input_;
};

// (N, C, H, W) -> (N, C, 1, 1): the mean over each channel's pixels.
class GlobalAvgPool : public Layer {
 public:
  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override { return {input[0], input[1], 1, 1}; }

 private:
  Shape input_shape_;
  Tensor output_;
  Tensor grad_input_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_POOLING_H_
