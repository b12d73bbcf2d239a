// Fully connected layer y = x W^T + b in FP32 through oneDNN inner-product primitives.
// An input of rank > 2 is flattened to (N, features) in its memory order (channels-last for
// rank 4), so no separate flatten pass is needed.
#ifndef MUPPET_WORKER_NN_LINEAR_H_
#define MUPPET_WORKER_NN_LINEAR_H_

#include <map>
#include <memory>

#include "worker/nn/layer.h"

namespace muppet {

class Linear : public Layer {
 public:
  // Parameters "<name>.weight" (out, in) and "<name>.bias" (out).
  Linear(const std::string& name, int64_t in_features, int64_t out_features);
  ~Linear() override;

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override;
  void CollectParameters(std::vector<Parameter*>& out) override;

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }

 private:
  struct Plan;
  Plan& PlanFor(int64_t batch);

  int64_t in_features_;
  int64_t out_features_;
  Parameter weight_;
  Parameter bias_;
  std::map<int64_t, std::unique_ptr<Plan>> plans_;
  Plan* plan_ = nullptr;
  const Tensor* input_ = nullptr;
  Tensor output_;
  Tensor grad_input_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_LINEAR_H_
