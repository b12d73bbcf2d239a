// Stochastic gradient descent with momentum, optional Nesterov, and L2 weight decay, with
// PyTorch's semantics: g = grad + wd * w; v = mu * v + g (v = g on the first step);
// w -= lr * (nesterov ? g + mu * v : v).
#ifndef MUPPET_WORKER_OPTIM_SGD_H_
#define MUPPET_WORKER_OPTIM_SGD_H_

#include <vector>

#include "worker/nn/layer.h"

namespace muppet {

struct SgdOptions {
  double momentum = 0.9;
  double weight_decay = 1e-4;
  bool nesterov = false;
};

class Sgd {
 public:
  Sgd(std::vector<Parameter*> parameters, const SgdOptions& options);

  // Updates every parameter from its gradient with learning rate `lr`.
  void Step(double lr);

  // Momentum buffers, one per parameter, for checkpoints.
  std::vector<Tensor>& momentum_buffers() { return velocity_; }
  const std::vector<Tensor>& momentum_buffers() const { return velocity_; }
  // Whether a step has run (the buffers hold a velocity), and its restoring from a checkpoint.
  bool started() const { return !first_step_; }
  void set_started(bool started) { first_step_ = !started; }

 private:
  std::vector<Parameter*> parameters_;
  SgdOptions options_;
  std::vector<Tensor> velocity_;
  bool first_step_ = true;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_OPTIM_SGD_H_
