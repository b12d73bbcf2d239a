#include "worker/nn/pooling.h"

#include <algorithm>

#include "worker/nn/dnnl_util.h"
#include "worker/nn/parallel.h"

namespace muppet {

using dnnl::memory;
using dnnl_util::Desc;
using dnnl_util::Engine;
using dnnl_util::Stream;
using dnnl_util::Wrap;

struct Pool2d::Plan {
  dnnl::pooling_forward forward;
  dnnl::pooling_backward backward;
  memory::desc src, dst;
  memory workspace;  // Max pooling: where each maximum came from.
};

Pool2d::Pool2d(Kind kind, const PoolOptions& options) : kind_(kind), options_(options) {}

Pool2d::~Pool2d() = default;

Shape Pool2d::OutputShape(const Shape& input) const {
  const auto out = [&](int64_t size) {
    const int64_t span = size + 2 * options_.padding - options_.kernel;
    int64_t n = (options_.ceil_mode ? (span + options_.stride - 1) : span) / options_.stride + 1;
    // As PyTorch: the last window must start inside the input or the left padding.
    if (options_.ceil_mode && (n - 1) * options_.stride >= size + options_.padding) --n;
    return n;
  };
  return {input[0], input[1], out(input[2]), out(input[3])};
}

Pool2d::Plan& Pool2d::PlanFor(const Shape& input) {
  std::unique_ptr<Plan>& plan = plans_[input];
  if (plan) return *plan;
  plan = std::make_unique<Plan>();
  const Shape output = OutputShape(input);
  plan->src = Desc(input);
  plan->dst = Desc(output);
  // Right padding that makes oneDNN produce exactly the output size (ceil mode adds some).
  memory::dims pad_right(2);
  for (int i = 0; i < 2; ++i) {
    pad_right[i] = std::max<int64_t>(0, (output[2 + i] - 1) * options_.stride + options_.kernel -
                                            input[2 + i] - options_.padding);
  }
  const auto algorithm = kind_ == Kind::kMax ? dnnl::algorithm::pooling_max
                                             : dnnl::algorithm::pooling_avg_include_padding;
  const memory::dims strides = {options_.stride, options_.stride};
  const memory::dims kernel = {options_.kernel, options_.kernel};
  const memory::dims pad_left = {options_.padding, options_.padding};
  dnnl::pooling_forward::primitive_desc forward_pd(
      dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, algorithm, plan->src,
                                  plan->dst, strides, kernel, pad_left, pad_right),
      Engine());
  plan->forward = dnnl::pooling_forward(forward_pd);
  plan->backward =
      dnnl::pooling_backward({dnnl::pooling_backward::desc(algorithm, plan->src, plan->dst, strides,
                                                           kernel, pad_left, pad_right),
                              Engine(), forward_pd});
  if (kind_ == Kind::kMax) plan->workspace = memory(forward_pd.workspace_desc(), Engine());
  return *plan;
}

const Tensor& Pool2d::Forward(const Tensor& input, Mode mode) {
  plan_ = &PlanFor(input.shape());
  input_shape_ = input.shape();
  output_.Resize(OutputShape(input.shape()));
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, Wrap(plan_->src, input)},
                                          {DNNL_ARG_DST, Wrap(plan_->dst, output_)}};
  if (kind_ == Kind::kMax) args[DNNL_ARG_WORKSPACE] = plan_->workspace;
  plan_->forward.execute(Stream(), args);
  precision_.RoundOutput(output_);
  return output_;
}

const Tensor& Pool2d::Backward(const Tensor& raw_grad_output) {
  const Tensor& grad_output = precision_.Gradient(raw_grad_output);
  grad_input_.Resize(input_shape_);
  std::unordered_map<int, memory> args = {{DNNL_ARG_DIFF_DST, Wrap(plan_->dst, grad_output)},
                                          {DNNL_ARG_DIFF_SRC, Wrap(plan_->src, grad_input_)}};
  if (kind_ == Kind::kMax) args[DNNL_ARG_WORKSPACE] = plan_->workspace;
  plan_->backward.execute(Stream(), args);
  return grad_input_;
}

void Pool2d::AttachPrecision(NumericPrecision* precision, int& next_id) {
  if (kind_ == Kind::kAverage) precision_.Attach(precision, next_id);
}

void GlobalAvgPool::AttachPrecision(NumericPrecision* precision, int& next_id) {
  precision_.Attach(precision, next_id);
}

const Tensor& GlobalAvgPool::Forward(const Tensor& input, Mode mode) {
  input_shape_ = input.shape();
  const int64_t c = input.c(), pixels = input.h() * input.w();
  output_.Resize(OutputShape(input.shape()));
  ParallelFor(
      input.n(),
      [&](int64_t begin, int64_t end) {
        std::vector<double> acc(c);
        for (int64_t n = begin; n < end; ++n) {
          std::fill(acc.begin(), acc.end(), 0.0);
          const float* x = input.data() + n * pixels * c;
          for (int64_t p = 0; p < pixels; ++p) {
            for (int64_t j = 0; j < c; ++j) acc[j] += x[p * c + j];
          }
          for (int64_t j = 0; j < c; ++j) output_[n * c + j] = static_cast<float>(acc[j] / pixels);
        }
      },
      pixels * c);
  precision_.RoundOutput(output_);
  return output_;
}

const Tensor& GlobalAvgPool::Backward(const Tensor& raw_grad_output) {
  const Tensor& grad_output = precision_.Gradient(raw_grad_output);
  grad_input_.Resize(input_shape_);
  const int64_t c = input_shape_[1], pixels = input_shape_[2] * input_shape_[3];
  const float inv = 1.0f / static_cast<float>(pixels);
  ParallelFor(
      input_shape_[0],
      [&](int64_t begin, int64_t end) {
        for (int64_t n = begin; n < end; ++n) {
          const float* dy = grad_output.data() + n * c;
          float* dx = grad_input_.data() + n * pixels * c;
          for (int64_t p = 0; p < pixels; ++p) {
            for (int64_t j = 0; j < c; ++j) dx[p * c + j] = dy[j] * inv;
          }
        }
      },
      pixels * c);
  return grad_input_;
}

}  // namespace muppet
