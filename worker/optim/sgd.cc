#include "worker/optim/sgd.h"

#include "worker/nn/parallel.h"

namespace muppet {

Sgd::Sgd(std::vector<Parameter*> parameters, const SgdOptions& options)
    : parameters_(std::move(parameters)), options_(options) {
  for (Parameter* p : parameters_) velocity_.emplace_back(p->value.shape());
}

void Sgd::Step(double lr) {
  const float mu = static_cast<float>(options_.momentum);
  const float wd = static_cast<float>(options_.weight_decay);
  const float rate = static_cast<float>(lr);
  const bool nesterov = options_.nesterov;
  const bool first = first_step_;
  for (size_t k = 0; k < parameters_.size(); ++k) {
    float* w = parameters_[k]->value.data();
    const float* grad = parameters_[k]->grad.data();
    float* v = velocity_[k].data();
    ParallelFor(parameters_[k]->value.size(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const float g = grad[i] + wd * w[i];
        v[i] = first ? g : mu * v[i] + g;
        w[i] -= rate * (nesterov ? g + mu * v[i] : v[i]);
      }
    });
  }
  first_step_ = false;
}

}  // namespace muppet
