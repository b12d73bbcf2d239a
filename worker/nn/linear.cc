#include "worker/nn/linear.h"

#include "worker/base/check.h"
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
    : in_features_(in_features),
      out_features_(out_features),
      weight_(name + ".weight", {out_features, in_features}),
      bias_(name + ".bias", {out_features}) {}

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
      dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, plan->src,
                                        plan->weights, plan->bias, plan->dst),
      Engine());
  plan->forward = dnnl::inner_product_forward(forward_pd);
  plan->backward_data = dnnl::inner_product_backward_data(
      {dnnl::inner_product_backward_data::desc(plan->src, plan->weights, plan->dst), Engine(),
       forward_pd});
  plan->backward_weights = dnnl::inner_product_backward_weights(
      {dnnl::inner_product_backward_weights::desc(plan->src, plan->weights, plan->bias,
                                                  plan->dst),
       Engine(), forward_pd});
  return *plan;
}

const Tensor& Linear::Forward(const Tensor& input, Mode mode) {
  MUPPET_CHECK(input.size() / input.dim(0) == in_features_) << "input " << ShapeString(input.shape());
  input_ = &input;
  plan_ = &PlanFor(input.dim(0));
  output_.Resize(OutputShape(input.shape()));
  plan_->forward.execute(Stream(), {{DNNL_ARG_SRC, Wrap(plan_->src, input)},
                                    {DNNL_ARG_WEIGHTS, Wrap(plan_->weights, weight_.value)},
                                    {DNNL_ARG_BIAS, Wrap(plan_->bias, bias_.value)},
                                    {DNNL_ARG_DST, Wrap(plan_->dst, output_)}});
  return output_;
}

const Tensor& Linear::Backward(const Tensor& grad_output) {
  const memory diff_dst = Wrap(plan_->dst, grad_output);
  plan_->backward_weights.execute(Stream(),
                                  {{DNNL_ARG_SRC, Wrap(plan_->src, *input_)},
                                   {DNNL_ARG_DIFF_DST, diff_dst},
                                   {DNNL_ARG_DIFF_WEIGHTS, Wrap(plan_->weights, weight_.grad)},
                                   {DNNL_ARG_DIFF_BIAS, Wrap(plan_->bias, bias_.grad)}});
  if (!input_grad_required_) {
    grad_input_.Resize({0});
    return grad_input_;
  }
  grad_input_.Resize(input_->shape());
  plan_->backward_data.execute(Stream(), {{DNNL_ARG_DIFF_DST, diff_dst},
                                          {DNNL_ARG_WEIGHTS, Wrap(plan_->weights, weight_.value)},
                                          {DNNL_ARG_DIFF_SRC, Wrap(plan_->src, grad_input_)}});
  return grad_input_;
}

void Linear::CollectParameters(std::vector<Parameter*>& out) {
  out.push_back(&weight_);
  out.push_back(&bias_);
}

}  // namespace muppet
