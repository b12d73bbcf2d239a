#include "worker/nn/conv2d.h"

#include <utility>

#include "base/check.h"
#include "worker/nn/dnnl_util.h"
#include "worker/nn/elementwise.h"

namespace muppet {

using dnnl::memory;
using dnnl_util::Desc;
using dnnl_util::Engine;
using dnnl_util::Stream;
using dnnl_util::Wrap;

// The primitives of one input shape. Activations stay channels-last; weights are handed to
// oneDNN in the blocked layout it prefers, reordered from the plain parameter each step.
struct Conv2d::Plan {
  dnnl::convolution_forward forward;
  dnnl::convolution_backward_data backward_data;
  dnnl::convolution_backward_weights backward_weights;
  memory::desc src, dst;
  memory forward_weights;        // Weights in the forward primitive's layout.
  memory backward_data_weights;  // Weights in the backward-data primitive's layout.
  memory diff_weights;           // Weight gradient in the backward-weights primitive's layout.
};

Conv2d::Conv2d(const std::string& name, const Conv2dOptions& options)
    : name_(name),
      options_(options),
      weight_(name + ".weight",
              {options.out_channels, options.in_channels, options.kernel, options.kernel},
              /*fixed_point_gradient=*/true) {
  if (options.bias) bias_.emplace(name + ".bias", Shape{options.out_channels}, true);
}

Conv2d::~Conv2d() = default;

Shape Conv2d::OutputShape(const Shape& input) const {
  const auto out = [&](int64_t size) {
    return (size + 2 * options_.padding - options_.kernel) / options_.stride + 1;
  };
  return {input[0], options_.out_channels, out(input[2]), out(input[3])};
}

Conv2d::Plan& Conv2d::PlanFor(const Shape& input) {
  std::unique_ptr<Plan>& plan = plans_[input];
  if (plan) return *plan;
  plan = std::make_unique<Plan>();
  const memory::desc src = Desc(input);
  const memory::desc dst = Desc(OutputShape(input));
  const memory::desc weights(
      {options_.out_channels, options_.in_channels, options_.kernel, options_.kernel},
      memory::data_type::f32, memory::format_tag::any);
  const memory::desc bias =
      bias_ ? memory::desc({options_.out_channels}, memory::data_type::f32, memory::format_tag::x)
            : memory::desc();
  const memory::dims strides = {options_.stride, options_.stride};
  const memory::dims padding = {options_.padding, options_.padding};
  const auto algorithm = dnnl::algorithm::convolution_direct;

  dnnl::convolution_forward::primitive_desc forward_pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algorithm, src, weights,
                                      bias, dst, strides, padding, padding),
      Engine());
  dnnl::convolution_backward_data::primitive_desc backward_data_pd(
      dnnl::convolution_backward_data::desc(algorithm, src, weights, dst, strides, padding,
                                            padding),
      Engine(), forward_pd);
  dnnl::convolution_backward_weights::primitive_desc backward_weights_pd(
      dnnl::convolution_backward_weights::desc(algorithm, src, weights, bias, dst, strides, padding,
                                               padding),
      Engine(), forward_pd);

  plan->forward = dnnl::convolution_forward(forward_pd);
  plan->backward_data = dnnl::convolution_backward_data(backward_data_pd);
  plan->backward_weights = dnnl::convolution_backward_weights(backward_weights_pd);
  plan->src = src;
  plan->dst = dst;
  const memory user_weights = Wrap(Desc(weight_.value.shape()), weight_.value);
  plan->forward_weights = dnnl_util::MemoryLike(user_weights, forward_pd.weights_desc());
  plan->backward_data_weights =
      forward_pd.weights_desc() == backward_data_pd.weights_desc()
          ? plan->forward_weights
          : dnnl_util::MemoryLike(user_weights, backward_data_pd.weights_desc());
  const memory user_grad = Wrap(Desc(weight_.grad.shape()), weight_.grad);
  plan->diff_weights = dnnl_util::MemoryLike(user_grad, backward_weights_pd.diff_weights_desc());
  return *plan;
}

const Tensor& Conv2d::Forward(const Tensor& input, Mode mode) {
  fixed_point_pass_ = precision_.fixed_point();
  output_coded_ = false;
  next_grad_output_range_.reset();  // A range handed back belongs to one step's Backward.
  // An FP32 pass reads the values themselves: a producer that left them described writes them.
  if (!fixed_point_pass_ && producer_ != nullptr) producer_->WriteDeferredOutput();
  reordered_weights_ = nullptr;
  grid_input_.Invalidate();
  grid_weights_.Invalidate();
  if (fixed_point_pass_) return FixedPointForward(input);
  input_ = &input;
  output_.Resize(OutputShape(input.shape()));
  FloatForward(input, weight_.value, bias_ ? bias_->value.span() : std::span<const float>());
  return output_;
}

const Tensor& Conv2d::Backward(const Tensor& grad_output) {
  const Tensor* addend = std::exchange(input_grad_addend_, nullptr);
  if (addend != nullptr) {
    MUPPET_CHECK(addend->shape() == input_->shape())
        << name_ << ": input gradient addend " << ShapeString(addend->shape()) << " vs input "
        << ShapeString(input_->shape());
  }
  const std::optional<kernels::Range> grad_range = std::exchange(next_grad_output_range_, {});
  if (fixed_point_pass_) return FixedPointBackward(grad_output, addend, grad_range);
  FloatBackwardWeights(*input_, grad_output);
  ParameterGradientsReady();
  grad_input_.Resize(input_grad_required_ ? input_->shape() : Shape{0});
  if (input_grad_required_) FloatBackwardData(weight_.value, grad_output, addend);
  return grad_input_;
}

bool Conv2d::AddToNextInputGrad(const Tensor& addend) {
  if (!input_grad_required_) return false;
  input_grad_addend_ = &addend;
  return true;
}

void Conv2d::SetNextGradOutputRange(const kernels::Range& range) {
  next_grad_output_range_ = range;
}

void Conv2d::FloatForward(const Tensor& input, const Tensor& weights, std::span<const float> bias) {
  plan_ = &PlanFor(input.shape());
  dnnl_util::CopyMemory(Wrap(Desc(weights.shape()), weights), plan_->forward_weights);
  reordered_weights_ = &weights;
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, Wrap(plan_->src, input)},
                                          {DNNL_ARG_WEIGHTS, plan_->forward_weights},
                                          {DNNL_ARG_DST, Wrap(plan_->dst, output_)}};
  if (bias_) {
    args[DNNL_ARG_BIAS] =
        memory(Desc(bias_->value.shape()), Engine(), const_cast<float*>(bias.data()));
  }
  plan_->forward.execute(Stream(), args);
}

void Conv2d::FloatBackwardWeights(const Tensor& input, const Tensor& grad_output) {
  // The plan of the forward's shape: created here when the forward took the integer kernels.
  plan_ = &PlanFor(input_->shape());
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, Wrap(plan_->src, input)},
                                          {DNNL_ARG_DIFF_DST, Wrap(plan_->dst, grad_output)},
                                          {DNNL_ARG_DIFF_WEIGHTS, plan_->diff_weights}};
  if (bias_) args[DNNL_ARG_DIFF_BIAS] = Wrap(Desc(bias_->grad.shape()), bias_->grad);
  plan_->backward_weights.execute(Stream(), args);
  dnnl_util::CopyMemory(plan_->diff_weights, Wrap(Desc(weight_.grad.shape()), weight_.grad));
}

void Conv2d::FloatBackwardData(const Tensor& weights, const Tensor& grad_output,
                               const Tensor* addend) {
  plan_ = &PlanFor(input_->shape());
  // The forward's reorder of `weights` serves when both primitives want the same layout.
  if (plan_->backward_data_weights.get_data_handle() != plan_->forward_weights.get_data_handle() ||
      &weights != reordered_weights_) {
    dnnl_util::CopyMemory(Wrap(Desc(weights.shape()), weights), plan_->backward_data_weights);
  }
  plan_->backward_data.execute(Stream(), {{DNNL_ARG_DIFF_DST, Wrap(plan_->dst, grad_output)},
                                          {DNNL_ARG_WEIGHTS, plan_->backward_data_weights},
                                          {DNNL_ARG_DIFF_SRC, Wrap(plan_->src, grad_input_)}});
  if (addend != nullptr) AddInto(grad_input_, *addend, grad_input_);
}

kernels::ConvGeometry Conv2d::Geometry(const Shape& input) const {
  return {.n = input[0],
          .h = input[2],
          .w = input[3],
          .c = input[1],
          .o = options_.out_channels,
          .kernel = options_.kernel,
          .stride = options_.stride,
          .padding = options_.padding};
}

// Q(x) and Q(w) are kept for the backward passes, so each tensor is quantised once per step.
// Each pass then runs by its route (route.h): the integer kernels on the codes, or the codes on
// their grid through the FP32 primitives.
const Tensor& Conv2d::FixedPointForward(const Tensor& input) {
  input_ = &input;
  output_.Resize(OutputShape(input.shape()));
  std::span<const float> bias;
  if (bias_) {
    rounded_bias_.assign(bias_->value.span().begin(), bias_->value.span().end());
    if (!precision_.Round(rounded_bias_, Rounded::kBias)) return output_;
    bias = rounded_bias_;
  }
  const kernels::ChannelAffineRows* deferred =
      producer_ != nullptr ? producer_->deferred_output() : nullptr;
  const bool input_quantized =
      deferred != nullptr
          ? precision_.Quantize(*deferred, kernels::Operand::kInput, input_codes_)
          : precision_.Quantize(input.span(), kernels::Operand::kInput, input_codes_);
  if (!input_quantized ||
      !precision_.Quantize(weight_.value.span(), kernels::Operand::kWeights, weight_codes_)) {
    return output_;
  }
  // The output's range, where the integer route gathers it as it scales the sums.
  kernels::RangeScan output_range;
  precision_.RunPass(LayerPass::kForward, input.shape(), [&](FixedPointRoute route) {
    output_range = {};
    if (route == FixedPointRoute::kGrid) {
      FloatForward(grid_input_.Of(input_codes_, input_->shape()),
                   grid_weights_.Of(weight_codes_, weight_.value.shape()), bias);
    } else {
      precision_.Account(kernels::ConvForward(Geometry(input.shape()), input_codes_, weight_codes_,
                                              bias, output_.span(), &output_range),
                         "convolution");
    }
  });
  if (!leave_output_codes_) {
    precision_.Round(output_.span(), Rounded::kOutput, output_range.range());
    return output_;
  }
  // The codes Round would leave; dequantised here only where a reader could not scale them
  // exactly (exponents near the float limits).
  if (precision_.RoundToCodes(output_.span(), Rounded::kOutput, output_codes_,
                              output_range.range())) {
    output_coded_ = kernels::ExactDequantizeFactor(output_codes_.exponent) != 0;
    if (!output_coded_) kernels::Dequantize(output_codes_, output_.span());
  }
  return output_;
}

bool Conv2d::LeaveOutputAsCodes() {
  leave_output_codes_ = true;
  return true;
}

bool Conv2d::ReadInputCodesFrom(Layer& producer) {
  if (!producer.DeferOutput()) return false;
  producer_ = &producer;
  return true;
}

const kernels::Quantized* Conv2d::output_codes() const {
  return output_coded_ ? &output_codes_ : nullptr;
}

const Tensor& Conv2d::FixedPointBackward(const Tensor& grad_output, const Tensor* addend,
                                         std::optional<kernels::Range> grad_range) {
  const kernels::ConvGeometry g = Geometry(input_->shape());
  grad_input_.Resize(input_grad_required_ ? input_->shape() : Shape{0});
  if (!precision_.Quantize(grad_output.span(), kernels::Operand::kGradient, grad_output_codes_,
                           grad_range)) {
    return grad_input_;
  }
  grid_grad_.Invalidate();
  precision_.RunPass(LayerPass::kBackwardWeights, input_->shape(), [&](FixedPointRoute route) {
    if (route == FixedPointRoute::kGrid) {
      FloatBackwardWeights(grid_input_.Of(input_codes_, input_->shape()),
                           grid_grad_.Of(grad_output_codes_, OutputShape(input_->shape())));
    } else {
      precision_.Account(
          kernels::ConvBackwardWeights(g, grad_output_codes_, input_codes_, weight_.grad.span(),
                                       bias_ ? bias_->grad.span() : std::span<float>()),
          "weight gradient");
    }
  });
  if (!precision_.Round(weight_.grad.span(), Rounded::kWeightGradient) ||
      (bias_ && !precision_.Round(bias_->grad.span(), Rounded::kBiasGradient))) {
    return grad_input_;
  }
  ParameterGradientsReady();
  if (!input_grad_required_) return grad_input_;
  precision_.RunPass(LayerPass::kBackwardData, input_->shape(), [&](FixedPointRoute route) {
    if (route == FixedPointRoute::kGrid) {
      FloatBackwardData(grid_weights_.Of(weight_codes_, weight_.value.shape()),
                        grid_grad_.Of(grad_output_codes_, OutputShape(input_->shape())), addend);
    } else {
      precision_.Account(
          kernels::ConvBackwardData(g, grad_output_codes_, weight_codes_, grad_input_.span(),
                                    addend != nullptr ? addend->span() : std::span<const float>()),
          "input gradient");
    }
  });
  return grad_input_;
}

void Conv2d::AttachPrecision(NumericPrecision* precision, int& next_id) {
  precision_.Attach(precision, next_id++, name_);
}

void Conv2d::ParameterGradientsReady() {
  weight_.GradientReady();
  if (bias_) bias_->GradientReady();
}

void Conv2d::CollectParameters(std::vector<Parameter*>& out) {
  out.push_back(&weight_);
  if (bias_) out.push_back(&*bias_);
}

}  // namespace muppet
