// Pooling layers: max and average pooling through oneDNN, and global average pooling.
#ifndef MUPPET_WORKER_NN_POOLING_H_
#define MUPPET_WORKER_NN_POOLING_H_

#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include "worker/nn/layer.h"

namespace muppet {

// The fixed-point rounding of an average pool: its output after Forward, and a rounded copy of
// its incoming gradient for Backward.
class AveragePrecision {
 public:
  void Attach(NumericPrecision* precision, int& next_id) {
    precision_.Attach(precision, next_id, "avg_pool" + std::to_string(next_id));
    ++next_id;
  }
  // Rounds the output in place if the model computes in fixed point.
  void RoundOutput(Tensor& output) {
    if (precision_.fixed_point()) precision_.Round(output.span(), Rounded::kOutput);
  }
  // The incoming gradient, rounded onto the grid if the model computes in fixed point.
  const Tensor& Gradient(const Tensor& grad_output) {
    if (!precision_.fixed_point()) return grad_output;
    rounded_.Resize(grad_output.shape());
    std::copy(grad_output.span().begin(), grad_output.span().end(), rounded_.data());
    precision_.Round(rounded_.span(), Rounded::kOutputGradient);
    return rounded_;
  }

  // The rounding streams, for an engine that runs the pool elsewhere (worker/gpu).
  const LayerPrecision& layer() const { return precision_; }

 private:
  LayerPrecision precision_;
  Tensor rounded_;
};

struct PoolOptions {
  int64_t kernel = 2;  // Square window.
  int64_t stride = 2;
  int64_t padding = 0;
  // Output size rounds up (PyTorch's ceil_mode), as GoogLeNet's pools need.
  bool ceil_mode = false;
};

// Max or average pooling over square windows. Average pooling counts padding as zeros
// (PyTorch's count_include_pad=True). At fixed-point precisions average pooling rounds its
// output and incoming gradient onto the fixed-point grid; max pooling stays FP32.
class Pool2d : public Layer {
 public:
  enum class Kind { kMax, kAverage };
  Pool2d(Kind kind, const PoolOptions& options);
  ~Pool2d() override;

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override;
  void AttachPrecision(NumericPrecision* precision, int& next_id) override;

  Kind kind() const { return kind_; }
  const PoolOptions& options() const { return options_; }
  const AveragePrecision& precision() const { return precision_; }

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
  AveragePrecision precision_;
};

// (N, C, H, W) -> (N, C, 1, 1): the mean over each channel's pixels. At fixed-point precisions
// it rounds its output and incoming gradient onto the fixed-point grid.
class GlobalAvgPool : public Layer {
 public:
  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override { return {input[0], input[1], 1, 1}; }
  void AttachPrecision(NumericPrecision* precision, int& next_id) override;

  const AveragePrecision& precision() const { return precision_; }

 private:
  Shape input_shape_;
  Tensor output_;
  Tensor grad_input_;
  AveragePrecision precision_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_POOLING_H_
