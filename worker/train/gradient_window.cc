#include "worker/train/gradient_window.h"

#include <algorithm>

namespace muppet {

GradientWindow::GradientWindow(std::vector<Parameter*> parameters, double weight_decay)
    : parameters_(std::move(parameters)), weight_decay_(static_cast<float>(weight_decay)) {
  for (const Parameter* p : parameters_) sums_.emplace_back(p->value.size(), 0.0);
}

std::vector<scheduler::TensorGradient> GradientWindow::Add() {
  std::vector<scheduler::TensorGradient> stats;
  stats.reserve(parameters_.size());
  for (size_t l = 0; l < parameters_.size(); ++l) {
    const float* grad = parameters_[l]->grad.data();
    const float* value = parameters_[l]->value.data();
    std::vector<double>& sum = sums_[l];
    double g_norm = 0, sum_norm = 0;
    for (size_t i = 0; i < sum.size(); ++i) {
      const float g = grad[i] + weight_decay_ * value[i];
      sum[i] += g;
      g_norm += static_cast<double>(g) * g;
      sum_norm += sum[i] * sum[i];
    }
    stats.push_back({.name = parameters_[l]->name,
                     .squared_norm = g_norm,
                     .window_sum_squared_norm = sum_norm,
                     .elements = static_cast<int64_t>(sum.size())});
  }
  return stats;
}

void GradientWindow::Reset() {
  for (std::vector<double>& sum : sums_) std::fill(sum.begin(), sum.end(), 0.0);
}

}  // namespace muppet
