// BatchNorm2d over channels-last tensors: batch statistics in training (with running averages
// for inference, as PyTorch: momentum 0.1, unbiased running variance), running statistics in
// evaluation. Statistics accumulate in double so that large batches stay accurate.
//
// With `relu`, a ReLU follows in the same passes over memory (forward and backward): the two
// element-wise passes a separate ReLU layer would cost are a fifth of a ResNet's step here.
#ifndef MUPPET_WORKER_NN_BATCH_NORM_H_
#define MUPPET_WORKER_NN_BATCH_NORM_H_

#include <vector>

#include "worker/nn/layer.h"

namespace muppet {

class BatchNorm2d : public Layer {
 public:
  // Parameters "<name>.weight" (gamma, ones) and "<name>.bias" (beta, zeros); buffers
  // "<name>.running_mean" (zeros) and "<name>.running_var" (ones).
  BatchNorm2d(const std::string& name, int64_t channels, bool relu = false, double momentum = 0.1,
              double epsilon = 1e-5);

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override { return input; }
  void CollectParameters(std::vector<Parameter*>& out) override;
  void CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) override;

  Parameter& gamma() { return gamma_; }
  Parameter& beta() { return beta_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }

 private:
  template <bool kRelu>
  const Tensor& BackwardImpl(const Tensor& grad_output);

  int64_t channels_;
  bool relu_;
  double momentum_;
  double epsilon_;
  std::string name_;
  Parameter gamma_;
  Parameter beta_;
  Tensor running_mean_;
  Tensor running_var_;
  // Per-channel statistics of the last training batch.
  std::vector<float> mean_;
  std::vector<float> inv_std_;
  const Tensor* input_ = nullptr;
  Tensor output_;
  Tensor grad_input_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_BATCH_NORM_H_
