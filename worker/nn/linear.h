// Fully connected layer y = x W^T + b in FP32 through oneDNN inner-product primitives.
// An input of rank > 2 is flattened to (N, features) in its memory order (channels-last for
// rank 4), so no separate flatten pass is needed. At fixed-point precisions it runs on the
// integer kernels of kernels/cpu/fixed_point_linear.h (see precision.h).
#ifndef MUPPET_WORKER_NN_LINEAR_H_
#define MUPPET_WORKER_NN_LINEAR_H_

#include <map>
#include <memory>

#include "kernels/cpu/fixed_point.h"
#include "worker/nn/layer.h"

namespace muppet {

class Linear : public Layer {
 public:
  // Parameters "<name>.weight" (out, in) and "<name>.bias" (out).
  Linear(const std::string& name, int64_t in_features, int64_t out_features);
  ~Linear() override;

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override;
  void CollectParameters(std::vector<Parameter*>& out) override;
  void AttachPrecision(NumericPrecision* precision, int& next_id) override;

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  // Its rounding streams, for an engine that runs it elsewhere (worker/gpu).
  const LayerPrecision& precision() const { return precision_; }

 private:
  struct Plan;
  Plan& PlanFor(int64_t batch);
  const Tensor& FixedPointForward(const Tensor& input);
  const Tensor& FixedPointBackward(const Tensor& grad_output);
  // The FP32 passes on the given operands (the FP32 layer's own, or the grid route's), through
  // the plan of the last Forward: output_, the parameters' gradients, grad_input_.
  void FloatForward(const Tensor& input, const Tensor& weights, const float* bias);
  void FloatBackwardWeights(const Tensor& input, const Tensor& grad_output);
  void FloatBackwardData(const Tensor& weights, const Tensor& grad_output);

  std::string name_;
  int64_t in_features_;
  int64_t out_features_;
  Parameter weight_;
  Parameter bias_;
  std::map<int64_t, std::unique_ptr<Plan>> plans_;
  Plan* plan_ = nullptr;
  const Tensor* input_ = nullptr;
  Tensor output_;
  Tensor grad_input_;

  LayerPrecision precision_;
  bool fixed_point_pass_ = false;  // The last Forward ran in fixed point.
  kernels::Quantized input_codes_, weight_codes_, grad_output_codes_;
  std::vector<float> rounded_bias_;
  GridTensor grid_input_, grid_weights_, grid_grad_;  // The grid route's operands.
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_LINEAR_H_
