// The worker's half of MuPPET's gradient-diversity statistics (reference, section 4): after
// each policy epoch, the last minibatch's gradient g_l of every parameter tensor, as the
// optimiser sees it (quantised gradient plus weight decay), is added to B_l, the sum over the
// current window. The policy gets ||g_l||^2 and ||B_l||^2 and keeps A_l itself.
#ifndef MUPPET_WORKER_TRAIN_GRADIENT_WINDOW_H_
#define MUPPET_WORKER_TRAIN_GRADIENT_WINDOW_H_

#include <vector>

#include "scheduler/precision_policy.h"
#include "worker/nn/layer.h"

namespace muppet {

class GradientWindow {
 public:
  // `parameters` must outlive the window.
  GradientWindow(std::vector<Parameter*> parameters, double weight_decay);

  // Adds the current gradients (g_l = grad + weight_decay * value, in FP32 exactly as Sgd
  // computes it) to B_l and returns each tensor's ||g_l||^2 and ||B_l||^2, summed in double.
  std::vector<scheduler::TensorGradient> Add();

  // Starts a new window: B_l = 0.
  void Reset();

  // B_l, one per parameter in order, for checkpoints.
  std::vector<std::vector<double>>& sums() { return sums_; }
  const std::vector<std::vector<double>>& sums() const { return sums_; }

 private:
  std::vector<Parameter*> parameters_;
  float weight_decay_;
  std::vector<std::vector<double>> sums_;  // B_l, one per parameter: a copy, never an alias.
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_GRADIENT_WINDOW_H_
