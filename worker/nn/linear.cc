#include "worker/nn/linear.h"

#include "base/check.h"
#include "kernels/cpu/fixed_point_linear.h"
#include "worker/nn/dnnl_util.h"

namespace muppet {

using dnnl::memory;
using dnnl_util::Engine;
using dnnl_util::Stream;
using dnnl_util::Wrap;

namespace {

memory::desc Plain(memory::dims dims) {
  return memory::desc(dims, memory::data_type::f32,
                      dims.size() == 2 ? memory::format_tag::ab : memory::format_tag::a);
}

}  // namespace

struct Linear::Plan {
  dnnl::inner_product_forward forward;
  dnnl::inner_product_backward_data backward_data;
  dnnl::inner_product_backward_weights backward_weights;
  memory::desc src, dst, weights, bias;
};

Linear::Linear(const std::string& name, int64_t in_features, int64_t out_features)
    : name_(name),
      in_features_(in_features),
      out_features_(out_features),
      weight_(name + ".weight", {out_features, in_features}, /*fixed_point_gradient=*/true),
      bias_(name + ".bias", {out_features}, true) {}

Linear::~Linear() = default;

Shape Linear::OutputShape(const Shape& input) const { return {input[0], out_features_}; }

Linear::Plan& Linear::PlanFor(int64_t batch) {
  std::unique_ptr<Plan>& plan = plans_[batch];
  if (plan) return *plan;
  plan = std::make_unique<Plan>();
  plan->src = Plain({batch, in_features_});
  plan->dst = Plain({batch, out_features_});
  plan->weights = Plain({out_features_, in_features_});
  plan->bias = Plain({out_features_});
  dnnl::inner_product_forward::primitive_desc forward_pd(
      dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, plan->src, plan->weights,
                                        plan->bias, plan->dst),
      Engine());
  plan->forward = dnnl::inner_product_forward(forward_pd);
  plan->backward_data = dnnl::inner_product_backward_data(
      {dnnl::inner_product_backward_data::desc(plan->src, plan->weights, plan->dst), Engine(),
       forward_pd});
  plan->backward_weights = dnnl::inner_product_backward_weights(
      {dnnl::inner_product_backward_weights::desc(plan->src, plan->weights, plan->bias, plan->dst),
       Engine(), forward_pd});
  return *plan;
}

const Tensor& Linear::Forward(const Tensor& input, Mode mode) {
  MUPPET_CHECK(input.size() / input.dim(0) == in_features_)
      << "input " << ShapeString(input.shape());
  fixed_point_pass_ = precision_.fixed_point();
  input_ = &input;
  plan_ = &PlanFor(input.dim(0));
  output_.Resize(OutputShape(input.shape()));
  if (fixed_point_pass_) return FixedPointForward(input);
  FloatForward(input, weight_.value, bias_.value.data());
  return output_;
}

const Tensor& Linear::Backward(const Tensor& grad_output) {
  if (fixed_point_pass_) return FixedPointBackward(grad_output);
  FloatBackwardWeights(*input_, grad_output);
  weight_.GradientReady();
  bias_.GradientReady();
  grad_input_.Resize(input_grad_required_ ? input_->shape() : Shape{0});
  if (input_grad_required_) FloatBackwardData(weight_.value, grad_output);
  return grad_input_;
}

void Linear::FloatForward(const Tensor& input, const Tensor& weights, const float* bias) {
  plan_->forward.execute(Stream(),
                         {{DNNL_ARG_SRC, Wrap(plan_->src, input)},
                          {DNNL_ARG_WEIGHTS, Wrap(plan_->weights, weights)},
                          {DNNL_ARG_BIAS, memory(plan_->bias, Engine(), const_cast<float*>(bias))},
                          {DNNL_ARG_DST, Wrap(plan_->dst, output_)}});
}

void Linear::FloatBackwardWeights(const Tensor& input, const Tensor& grad_output) {
  plan_->backward_weights.execute(Stream(),
                                  {{DNNL_ARG_SRC, Wrap(plan_->src, input)},
                                   {DNNL_ARG_DIFF_DST, Wrap(plan_->dst, grad_output)},
                                   {DNNL_ARG_DIFF_WEIGHTS, Wrap(plan_->weights, weight_.grad)},
                                   {DNNL_ARG_DIFF_BIAS, Wrap(plan_->bias, bias_.grad)}});
}

void Linear::FloatBackwardData(const Tensor& weights, const Tensor& grad_output) {
  plan_->backward_data.execute(Stream(), {{DNNL_ARG_DIFF_DST, Wrap(plan_->dst, grad_output)},
                                          {DNNL_ARG_WEIGHTS, Wrap(plan_->weights, weights)},
                                          {DNNL_ARG_DIFF_SRC, Wrap(plan_->src, grad_input_)}});
}

// Q(x) and Q(w) are kept for the backward passes, so each tensor is quantised once per step.
// Each pass then runs by its route (route.h).
const Tensor& Linear::FixedPointForward(const Tensor& input) {
  grid_input_.Invalidate();
  grid_weights_.Invalidate();
  rounded_bias_.assign(bias_.value.span().begin(), bias_.value.span().end());
  if (!precision_.Round(rounded_bias_, Rounded::kBias) ||
      !precision_.Quantize(input.span(), kernels::Operand::kInput, input_codes_) ||
      !precision_.Quantize(weight_.value.span(), kernels::Operand::kWeights, weight_codes_)) {
    return output_;
  }
  precision_.RunPass(LayerPass::kForward, input.shape(), [&](FixedPointRoute route) {
    if (route == FixedPointRoute::kGrid) {
      FloatForward(grid_input_.Of(input_codes_, input.shape()),
                   grid_weights_.Of(weight_codes_, weight_.value.shape()), rounded_bias_.data());
    } else {
      precision_.Account(
          kernels::LinearForward(input_codes_, weight_codes_, rounded_bias_, input.dim(0),
                                 in_features_, out_features_, output_.span()),
          "linear");
    }
  });
  precision_.Round(output_.span(), Rounded::kOutput);
  return output_;
}

const Tensor& Linear::FixedPointBackward(const Tensor& grad_output) {
  const int64_t n = input_->dim(0);
  grad_input_.Resize(input_grad_required_ ? input_->shape() : Shape{0});
  grid_grad_.Invalidate();
  if (!precision_.Quantize(grad_output.span(), kernels::Operand::kGradient, grad_output_codes_)) {
    return grad_input_;
  }
  precision_.RunPass(LayerPass::kBackwardWeights, input_->shape(), [&](FixedPointRoute route) {
    if (route == FixedPointRoute::kGrid) {
      FloatBackwardWeights(grid_input_.Of(input_codes_, input_->shape()),
                           grid_grad_.Of(grad_output_codes_, grad_output.shape()));
    } else {
      precision_.Account(
          kernels::LinearBackwardWeights(grad_output_codes_, input_codes_, n, in_features_,
                                         out_features_, weight_.grad.span(), bias_.grad.span()),
          "weight gradient");
    }
  });
  if (!precision_.Round(weight_.grad.span(), Rounded::kWeightGradient) ||
      !precision_.Round(bias_.grad.span(), Rounded::kBiasGradient)) {
    return grad_input_;
  }
  weight_.GradientReady();
  bias_.GradientReady();
  if (!input_grad_required_) return grad_input_;
  precision_.RunPass(LayerPass::kBackwardData, input_->shape(), [&](FixedPointRoute route) {
    if (route == FixedPointRoute::kGrid) {
      FloatBackwardData(grid_weights_.Of(weight_codes_, weight_.value.shape()),
                        grid_grad_.Of(grad_output_codes_, grad_output.shape()));
    } else {
      precision_.Account(
          kernels::LinearBackwardData(grad_output_codes_, weight_codes_, n, in_features_,
                                      out_features_, grad_input_.span()),
          "input gradient");
    }
  });
  return grad_input_;
}

void Linear::AttachPrecision(NumericPrecision* precision, int& next_id) {
  precision_.Attach(precision, next_id++, name_);
}

void Linear::CollectParameters(std::vector<Parameter*>& out) {
  out.push_back(&weight_);
  out.push_back(&bias_);
}

}  // namespace muppet
