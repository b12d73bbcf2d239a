// Layers made of layers: a chain, a residual block (with the residual add) and parallel branches
// joined by a channel concat (for Inception blocks).
#ifndef MUPPET_WORKER_NN_CONTAINERS_H_
#define MUPPET_WORKER_NN_CONTAINERS_H_

#include <memory>
#include <vector>

#include "worker/nn/layer.h"

namespace muppet {

class Sequential : public Layer {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::unique_ptr<Layer>> layers);

  // Appends a layer and returns it.
  template <typename T>
  T* Add(std::unique_ptr<T> layer) {
    T* raw = layer.get();
    layers_.push_back(std::move(layer));
    return raw;
  }

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  // The output shape, or the first intermediate shape with a dimension below 1 (an input too
  // small for the network).
  Shape OutputShape(const Shape& input) const override;
  // Its layers'.
  int64_t ActivationElements(const Shape& input) const override;
  void CollectParameters(std::vector<Parameter*>& out) override;
  void CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) override;
  // Attaches every layer and links neighbours that pass codes (layer.h).
  void AttachPrecision(NumericPrecision* precision, int& next_id) override;
  void SetInputGradRequired(bool required) override;
  // The first layer's.
  bool AddToNextInputGrad(const Tensor& addend) override;
  // The last layer's.
  bool DeferOutput() override;
  const kernels::ChannelAffineRows* deferred_output() const override;
  void WriteDeferredOutput() override;

  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  const Tensor* input_ = nullptr;
};

// y = main(x) + shortcut(x), where a null shortcut is the identity; with `relu`, y is then
// passed through a ReLU in the same pass (the ResNet block's final activation). Where main ends
// in a BatchNorm, its output is computed in that pass too, never written on its own (layer.h's
// DeferOutput, asked for when the precision is attached).
class Residual : public Layer {
 public:
  Residual(std::unique_ptr<Layer> main, std::unique_ptr<Layer> shortcut, bool relu = false);

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override { return main_->OutputShape(input); }
  // The paths', and its own output, masked gradient and input gradient.
  int64_t ActivationElements(const Shape& input) const override;
  void CollectParameters(std::vector<Parameter*>& out) override;
  void CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) override;
  void AttachPrecision(NumericPrecision* precision, int& next_id) override;

  Layer& main() const { return *main_; }
  // Null for the identity.
  Layer* shortcut() const { return shortcut_.get(); }
  bool relu() const { return relu_; }

 private:
  std::unique_ptr<Layer> main_;
  std::unique_ptr<Layer> shortcut_;
  bool relu_;
  Tensor output_;
  Tensor masked_grad_;  // dLoss/d(main + shortcut) with the ReLU applied.
  Tensor grad_input_;
};

// Runs every branch on the same input and concatenates their outputs along channels. Branch
// outputs must agree in N, H and W.
class Concat : public Layer {
 public:
  explicit Concat(std::vector<std::unique_ptr<Layer>> branches);

  const Tensor& Forward(const Tensor& input, Mode mode) override;
  const Tensor& Backward(const Tensor& grad_output) override;
  Shape OutputShape(const Shape& input) const override;
  // The branches', and its own output, branch gradient and input gradient.
  int64_t ActivationElements(const Shape& input) const override;
  void CollectParameters(std::vector<Parameter*>& out) override;
  void CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) override;
  void AttachPrecision(NumericPrecision* precision, int& next_id) override;

 private:
  std::vector<std::unique_ptr<Layer>> branches_;
  std::vector<int64_t> channels_;  // Of each branch's last output.
  Tensor output_;
  Tensor branch_grad_;
  Tensor grad_input_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_CONTAINERS_H_
