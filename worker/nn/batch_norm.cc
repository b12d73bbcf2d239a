#include "worker/nn/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/quantize.h"
#include "worker/nn/parallel.h"

namespace muppet {

BatchNorm2d::BatchNorm2d(const std::string& name, int64_t channels, bool relu, double momentum,
                         double epsilon)
    : channels_(channels),
      relu_(relu),
      momentum_(momentum),
      epsilon_(epsilon),
      name_(name),
      gamma_(name + ".weight", {channels}),
      beta_(name + ".bias", {channels}),
      running_mean_({channels}),
      running_var_({channels}),
      mean_(channels),
      inv_std_(channels),
      scale_(channels),
      shift_(channels) {
  gamma_.value.Fill(1.0f);
  running_var_.Fill(1.0f);
}

bool BatchNorm2d::ReadInputCodesFrom(Layer& producer) {
  if (!producer.LeaveOutputAsCodes()) return false;
  producer_ = &producer;
  return true;
}

kernels::ChannelRows BatchNorm2d::InputRows() const {
  kernels::ChannelRows x{.rows = input_->size() / channels_, .channels = channels_};
  if (input_codes_ == nullptr) {
    x.f32 = input_->data();
  } else {
    x.factor = kernels::ExactDequantizeFactor(input_codes_->exponent);
    if (input_codes_->word_length <= 8) {
      x.s8 = input_codes_->s8.data();
    } else {
      x.s16 = input_codes_->s16.data();
    }
  }
  return x;
}

const Tensor& BatchNorm2d::Forward(const Tensor& input, Mode mode) {
  const int64_t c = channels_;
  input_ = &input;
  input_codes_ = producer_ != nullptr ? producer_->output_codes() : nullptr;
  const kernels::ChannelRows x = InputRows();
  output_.Resize(input.shape());
  code_extremes_ = mode == Mode::kTrain && input_codes_ != nullptr;
  if (mode == Mode::kTrain) {
    const std::vector<double> stats = BatchSums(x);
    const int64_t rows = x.rows;  // Pixels of the whole batch.
    for (int64_t j = 0; j < c; ++j) {
      const double mean = stats[j] / rows;
      const double var = std::max(stats[c + j] / rows - mean * mean, 0.0);
      mean_[j] = static_cast<float>(mean);
      inv_std_[j] = static_cast<float>(1.0 / std::sqrt(var + epsilon_));
      const double unbiased = rows > 1 ? var * rows / (rows - 1) : var;
      running_mean_[j] = static_cast<float>((1 - momentum_) * running_mean_[j] + momentum_ * mean);
      running_var_[j] =
          static_cast<float>((1 - momentum_) * running_var_[j] + momentum_ * unbiased);
    }
  } else {
    for (int64_t j = 0; j < c; ++j) {
      mean_[j] = running_mean_[j];
      inv_std_[j] = static_cast<float>(1.0 / std::sqrt(running_var_[j] + epsilon_));
    }
  }
  // y = x * scale + shift, per channel.
  for (int64_t j = 0; j < c; ++j) {
    scale_[j] = gamma_.value[j] * inv_std_[j];
    shift_[j] = beta_.value[j] - mean_[j] * scale_[j];
  }
  output_deferred_ = defer_output_;
  if (output_deferred_) {
    deferred_ = Output();
  } else {
    WriteOutput();
  }
  return output_;
}

std::vector<double> BatchNorm2d::BatchSums(const kernels::ChannelRows& x) {
  const int64_t c = channels_;
  struct Partial {
    std::vector<double> sums;  // Of x, then of x^2.
    std::vector<int32_t> min, max;
  };
  const Partial init{std::vector<double>(2 * c, 0.0), std::vector<int32_t>(c, INT32_MAX),
                     std::vector<int32_t>(c, INT32_MIN)};
  // Each thread's contiguous chunk, then the chunks added in thread order (as ReduceChunks does),
  // so the sums depend on the thread count only.
  const std::vector<Partial> partial = ParallelForEachThread(
      x.rows, 2 * c, init, [&](int64_t begin, int64_t end, Partial& p) {
        kernels::ChannelSums(x, begin, end, p.sums.data(), p.sums.data() + c,
                             {p.min.data(), p.max.data()});
      });
  std::vector<double> total(2 * c, 0.0);
  code_min_ = init.min;
  code_max_ = init.max;
  for (const Partial& p : partial) {
    for (int64_t j = 0; j < 2 * c; ++j) total[j] += p.sums[j];
    for (int64_t j = 0; j < c; ++j) {
      code_min_[j] = std::min(code_min_[j], p.min[j]);
      code_max_[j] = std::max(code_max_[j], p.max[j]);
    }
  }
  return total;
}

kernels::ChannelAffineRows BatchNorm2d::Output() const {
  return {.x = InputRows(),
          .scale = scale_.data(),
          .shift = shift_.data(),
          .floor = relu_ ? 0.0f : -INFINITY,
          .code_min = code_extremes_ ? code_min_.data() : nullptr,
          .code_max = code_extremes_ ? code_max_.data() : nullptr};
}

void BatchNorm2d::WriteOutput() { WriteChannelAffine(Output(), output_.data()); }

void WriteChannelAffine(const kernels::ChannelAffineRows& y, float* out,
                        const kernels::ChannelAddend& addend) {
  const int64_t c = y.x.channels;
  ParallelFor(
      y.x.rows,
      [&](int64_t begin, int64_t end) {
        kernels::ChannelAffine(y.x, begin, end, y.scale, y.shift, y.floor, out + begin * c, addend);
      },
      c);
}

bool BatchNorm2d::DeferOutput() {
  defer_output_ = true;
  return true;
}

const kernels::ChannelAffineRows* BatchNorm2d::deferred_output() const {
  return output_deferred_ ? &deferred_ : nullptr;
}

void BatchNorm2d::WriteDeferredOutput() {
  if (!output_deferred_) return;
  WriteOutput();
  output_deferred_ = false;
}

const Tensor& BatchNorm2d::Backward(const Tensor& grad_output) {
  const int64_t c = channels_;
  const kernels::ChannelRows x = InputRows();
  // With the fused ReLU, g = dy where the output is positive, else 0.
  const kernels::ChannelGrad grad{.dy = grad_output.data(),
                                  .mean = mean_.data(),
                                  .inv_std = inv_std_.data(),
                                  .relu_scale = relu_ ? scale_.data() : nullptr,
                                  .relu_shift = relu_ ? shift_.data() : nullptr};
  // sum(g) and sum(g * xhat) per channel.
  std::vector<double> sums =
      ReduceChunks(x.rows, 2 * c, [&](int64_t begin, int64_t end, double* acc) {
        kernels::ChannelGradSums(x, grad, begin, end, acc, acc + c);
      });
  std::vector<float> mean_dy(c), mean_dy_xhat(c);
  for (int64_t j = 0; j < c; ++j) {
    beta_.grad[j] = static_cast<float>(sums[j]);
    gamma_.grad[j] = static_cast<float>(sums[c + j]);
    mean_dy[j] = static_cast<float>(sums[j] / x.rows);
    mean_dy_xhat[j] = static_cast<float>(sums[c + j] / x.rows);
  }
  gamma_.GradientReady();
  beta_.GradientReady();
  if (!input_grad_required_) {
    grad_input_.Resize({0});
    return grad_input_;
  }
  grad_input_.Resize(input_->shape());
  // A producer that quantises this gradient takes its range, gathered a block of rows at a time
  // right after the block is written.
  const bool gather = producer_ != nullptr && producer_->WantsGradOutputRange();
  const int64_t block = gather ? std::max<int64_t>(1, kernels::kInCacheElements / c) : x.rows;
  // dx = gamma * inv_std * (g - mean(g) - xhat * mean(g * xhat)), gamma * inv_std being the
  // forward's scale.
  const std::vector<kernels::RangeScan> scans = ParallelForEachThread(
      x.rows, c, kernels::RangeScan{}, [&](int64_t begin, int64_t end, kernels::RangeScan& scan) {
        for (int64_t r0 = begin; r0 < end; r0 += block) {
          const int64_t r1 = std::min(end, r0 + block);
          kernels::ChannelInputGrad(x, grad, r0, r1, scale_.data(), mean_dy.data(),
                                    mean_dy_xhat.data(), grad_input_.data());
          if (gather) scan.Add(grad_input_.data() + r0 * c, (r1 - r0) * c);
        }
      });
  if (gather) {
    kernels::RangeScan range;
    for (const kernels::RangeScan& scan : scans) range.Merge(scan);
    if (const std::optional<kernels::Range> r = range.range())
      producer_->SetNextGradOutputRange(*r);
  }
  return grad_input_;
}

void BatchNorm2d::CollectParameters(std::vector<Parameter*>& out) {
  out.push_back(&gamma_);
  out.push_back(&beta_);
}

void BatchNorm2d::CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) {
  out.emplace_back(name_ + ".running_mean", &running_mean_);
  out.emplace_back(name_ + ".running_var", &running_var_);
}

}  // namespace muppet
