// 2-D convolution: in FP32 through oneDNN (forward, backward-data, backward-weights), with
// primitives created once per input shape and reused; at fixed-point precisions each pass by its
// route (route.h): the integer kernels of kernels/cpu/fixed_point_conv.h, or the same codes on
// their grid through the FP32 primitives (see precision.h for what is quantised).
#ifndef MUPPET_WORKER_NN_CONV2D_H_
#define MUPPET_WORKER_NN_CONV2D_H_

#include <map>
#include <memory>
#include <optional>

#include "kernels/cpu/fixed_point_conv.h"
#include "worker/nn/layer.h"

namespace muppet {

struct Conv2dOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 3;  // Square kernel.
  int64_t stride = 1;
  int64_t padding = 0;  // Zero padding on every side.
  bool bias = true;
};

class Conv2d : public Layer {
 public:
  // Parameters are named "<name>.weight" (O, I, K, K) and "<name>.bias" (O), zero-filled until
  // an initialiser runs.
  Conv2d(const std::string& name, const Conv2dOptions& options);
  ~Conv2d() override;

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override;
  void CollectParameters(std::vector<Parameter*>& out) override;
  void AttachPrecision(NumericPrecision* precision, int& next_id) override;
  // At fixed point, leaves the rounded output as its codes (layer.h); the FP32 output tensor then
  // holds the unrounded values.
  bool LeaveOutputAsCodes() override;
  const kernels::Quantized* output_codes() const override;
  // At fixed point, quantises a producer's deferred output (layer.h) without it being written.
  bool ReadInputCodesFrom(Layer& producer) override;
  // Adds `addend` to the next input gradient (layer.h): on the 8-bit route through oneDNN, in the
  // pass that scales its integer sums; elsewhere in a pass of its own.
  bool AddToNextInputGrad(const Tensor& addend) override;
  // At fixed point, quantises the next output gradient with the range its consumer gathered.
  bool WantsGradOutputRange() const override { return fixed_point_pass_; }
  void SetNextGradOutputRange(const kernels::Range& range) override;

  const Conv2dOptions& options() const { return options_; }
  // Its rounding streams, for an engine that runs it elsewhere (worker/gpu).
  const LayerPrecision& precision() const { return precision_; }
  Parameter& weight() { return weight_; }
  Parameter* bias() { return bias_ ? &*bias_ : nullptr; }

 private:
  struct Plan;
  Plan& PlanFor(const Shape& input);
  kernels::ConvGeometry Geometry(const Shape& input) const;
  const Tensor& FixedPointForward(const Tensor& input);
  // `addend`: as AddToNextInputGrad's, or null; `grad_range`: grad_output's, where known.
  const Tensor& FixedPointBackward(const Tensor& grad_output, const Tensor* addend,
                                   std::optional<kernels::Range> grad_range);
  // The FP32 passes on the given operands (the FP32 layer's own, or the grid route's), through
  // the plan of the last Forward's input shape: output_, the parameters' gradients, grad_input_.
  void FloatForward(const Tensor& input, const Tensor& weights, std::span<const float> bias);
  void FloatBackwardWeights(const Tensor& input, const Tensor& grad_output);
  void FloatBackwardData(const Tensor& weights, const Tensor& grad_output, const Tensor* addend);
  // Tells the parameters their gradients are written (Parameter::GradientReady).
  void ParameterGradientsReady();

  std::string name_;
  Conv2dOptions options_;
  Parameter weight_;
  std::optional<Parameter> bias_;
  std::map<Shape, std::unique_ptr<Plan>> plans_;
  Plan* plan_ = nullptr;  // Of the last FP32 pass.
  const Tensor* input_ = nullptr;
  Tensor output_;
  Tensor grad_input_;
  const Tensor* input_grad_addend_ = nullptr;             // For the next Backward only.
  std::optional<kernels::Range> next_grad_output_range_;  // For the next Backward only.

  LayerPrecision precision_;
  bool fixed_point_pass_ = false;  // The last Forward ran in fixed point.
  kernels::Quantized input_codes_, weight_codes_, grad_output_codes_;
  std::vector<float> rounded_bias_;
  Layer* producer_ = nullptr;  // Whose deferred output Forward quantises.
  bool leave_output_codes_ = false;
  bool output_coded_ = false;  // The last Forward left output_codes_ as its output.
  kernels::Quantized output_codes_;
  const Tensor* reordered_weights_ = nullptr;  // What plan_->forward_weights holds this step.
  GridTensor grid_input_, grid_weights_, grid_grad_;  // The grid route's operands.
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_CONV2D_H_
