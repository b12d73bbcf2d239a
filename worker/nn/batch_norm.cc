#include "worker/nn/batch_norm.h"

#include <algorithm>
#include <cmath>

#include "worker/nn/parallel.h"
#include "worker/nn/relu_grad.h"

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
      inv_std_(channels) {
  gamma_.value.Fill(1.0f);
  running_var_.Fill(1.0f);
}

const Tensor& BatchNorm2d::Forward(const Tensor& input, Mode mode) {
  const int64_t c = channels_;
  const int64_t rows = input.size() / c;  // Pixels of the whole batch.
  input_ = &input;
  output_.Resize(input.shape());
  if (mode == Mode::kTrain) {
    // Per-channel sum and sum of squares, reduced in a fixed order for determinism.
    std::vector<double> stats = ReduceRows(rows, 2 * c, [&](int64_t row, double* acc) {
      const float* x = input.data() + row * c;
      for (int64_t j = 0; j < c; ++j) {
        acc[j] += x[j];
        acc[c + j] += static_cast<double>(x[j]) * x[j];
      }
    });
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
  std::vector<float> scale(c), shift(c);
  for (int64_t j = 0; j < c; ++j) {
    scale[j] = gamma_.value[j] * inv_std_[j];
    shift[j] = beta_.value[j] - mean_[j] * scale[j];
  }
  const float floor = relu_ ? 0.0f : -INFINITY;
  ParallelFor(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          const float* x = input.data() + row * c;
          float* y = output_.data() + row * c;
          for (int64_t j = 0; j < c; ++j) y[j] = std::max(x[j] * scale[j] + shift[j], floor);
        }
      },
      c);
  return output_;
}

const Tensor& BatchNorm2d::Backward(const Tensor& grad_output) {
  return relu_ ? BackwardImpl<true>(grad_output) : BackwardImpl<false>(grad_output);
}

template <bool kRelu>
const Tensor& BatchNorm2d::BackwardImpl(const Tensor& grad_output) {
  const int64_t c = channels_;
  const int64_t rows = input_->size() / c;
  const float* mean = mean_.data();
  const float* inv_std = inv_std_.data();
  // With the fused ReLU, g = dy where the output is positive, else 0.
  const auto gradient = [](const float* dy, const float* y, int64_t j) {
    if constexpr (kRelu) {
      return ReluGrad(dy[j], y[j]);
    } else {
      return dy[j];
    }
  };
  // sum(g) and sum(g * xhat) per channel.
  std::vector<double> sums = ReduceRows(rows, 2 * c, [&](int64_t row, double* acc) {
    const float* x = input_->data() + row * c;
    const float* dy = grad_output.data() + row * c;
    const float* y = output_.data() + row * c;
    for (int64_t j = 0; j < c; ++j) {
      const float g = gradient(dy, y, j);
      acc[j] += g;
      acc[c + j] += static_cast<double>(g) * ((x[j] - mean[j]) * inv_std[j]);
    }
  });
  std::vector<float> mean_dy(c), mean_dy_xhat(c), scale(c);
  for (int64_t j = 0; j < c; ++j) {
    beta_.grad[j] = static_cast<float>(sums[j]);
    gamma_.grad[j] = static_cast<float>(sums[c + j]);
    mean_dy[j] = static_cast<float>(sums[j] / rows);
    mean_dy_xhat[j] = static_cast<float>(sums[c + j] / rows);
    scale[j] = gamma_.value[j] * inv_std[j];
  }
  gamma_.GradientReady();
  beta_.GradientReady();
  if (!input_grad_required_) {
    grad_input_.Resize({0});
    return grad_input_;
  }
  grad_input_.Resize(input_->shape());
  // dx = gamma * inv_std * (g - mean(g) - xhat * mean(g * xhat)).
  ParallelFor(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          const float* x = input_->data() + row * c;
          const float* dy = grad_output.data() + row * c;
          const float* y = output_.data() + row * c;
          float* dx = grad_input_.data() + row * c;
          for (int64_t j = 0; j < c; ++j) {
            const float xhat = (x[j] - mean[j]) * inv_std[j];
            dx[j] = scale[j] * (gradient(dy, y, j) - mean_dy[j] - xhat * mean_dy_xhat[j]);
          }
        }
      },
      c);
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
