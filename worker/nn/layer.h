// The layer interface of the training engine: explicit forward and backward passes over
// channels-last tensors, with parameters exposed to the optimiser.
#ifndef MUPPET_WORKER_NN_LAYER_H_
#define MUPPET_WORKER_NN_LAYER_H_

#include <functional>
#include <string>
#include <vector>

#include "worker/nn/precision.h"
#include "worker/tensor/tensor.h"

namespace muppet {

// A trainable tensor: its FP32 master value and the gradient of the last backward pass.
struct Parameter {
  Parameter(std::string name, Shape shape, bool fixed_point_gradient = false)
      : name(std::move(name)),
        value(shape),
        grad(shape),
        fixed_point_gradient(fixed_point_gradient) {}

  // Called by the owning layer once Backward has written `grad` for the pass.
  void GradientReady() {
    if (on_gradient_ready) on_gradient_ready();
  }

  std::string name;  // Unique within a model, e.g. "stage1.0.conv1.weight".
  Tensor value;
  Tensor grad;
  // Whether a fixed-point level rounds the gradient onto its grid (convolution and linear
  // weights and biases); BatchNorm's gradients stay FP32.
  bool fixed_point_gradient = false;
  // Set by data-parallel training to start reducing the gradient while backward goes on. Runs
  // on the thread of Backward; may be empty.
  std::function<void()> on_gradient_ready;
};

enum class Mode { kTrain, kEval };

class Layer {
 public:
  virtual ~Layer() = default;

  // Computes the output for `input` and keeps what Backward needs. The input must stay alive and
  // unchanged until Backward returns. The returned tensor is owned by the layer and valid until
  // the next Forward.
  virtual const Tensor& Forward(const Tensor& input, Mode mode) = 0;

  // Given dLoss/dOutput of the last training Forward, writes the parameters' gradients and
  // returns dLoss/dInput (owned by the layer, valid until the next Backward).
  virtual const Tensor& Backward(const Tensor& grad_output) = 0;

  // Returns the output shape for an input of `input` shape (batch dimension included).
  virtual Shape OutputShape(const Shape& input) const = 0;

  // Activation-sized floats this layer (and its children) keeps for an input of `input` shape:
  // by default its output and its input's gradient. For memory estimates before training.
  virtual int64_t ActivationElements(const Shape& input) const {
    return NumElements(OutputShape(input)) + NumElements(input);
  }

  // Appends this layer's parameters (and its children's) in a fixed order.
  virtual void CollectParameters(std::vector<Parameter*>& out) {}

  // Appends non-trainable state that a checkpoint must keep (BatchNorm running statistics).
  virtual void CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) {}

  // Binds this layer (and its children) to the model's numeric precision, numbering the
  // layers that quantise from `next_id` upwards. Layers that always compute in FP32 ignore it.
  virtual void AttachPrecision(NumericPrecision* precision, int& next_id) {}

  // Fixed-point activations passed between neighbours as codes. A layer whose fixed-point Forward
  // rounds its output onto the grid (a convolution) can leave that output as its codes, for the
  // layer after it (BatchNorm) to read: the rounded FP32 output is then never written, and the
  // consumer reads a byte or two an element instead of four. Sequential links such neighbours
  // when the precision is attached; results are bit-identical either way.
  //
  // Producer: from now on, fixed-point Forwards leave their output as codes where they can, and
  // the returned tensor's values are unspecified then. False (nothing changes) if this layer
  // never does.
  virtual bool LeaveOutputAsCodes() { return false; }
  // The codes of the last Forward's output if it left them, else null (the output tensor holds
  // the values). Owned by the layer, valid until its next Forward.
  virtual const kernels::Quantized* output_codes() const { return nullptr; }
  //
  // A producer whose output is a per-channel affine function of its input (BatchNorm) can go
  // further and leave its output unwritten, described instead, for a consumer that makes one
  // pass over it anyway: the next convolution computes the values as it quantises them, a
  // residual add as it adds them, and that activation never exists on its own.
  //
  // Producer: from now on, Forwards leave their output described, through deferred_output(),
  // and the returned tensor unwritten until WriteDeferredOutput(). False (nothing changes) if
  // this layer never does.
  virtual bool DeferOutput() { return false; }
  // The description of the last Forward's output if it was left unwritten, else null. Owned by
  // the layer, valid until its next Forward.
  virtual const kernels::ChannelAffineRows* deferred_output() const { return nullptr; }
  // Writes the output the last Forward left described (a consumer that needs the values after
  // all); nothing if it wrote it.
  virtual void WriteDeferredOutput() {}

  // Consumer: whether Forward reads its input from `producer`'s codes or description whenever it
  // leaves them (asking it to, through LeaveOutputAsCodes or DeferOutput). `producer` must be the
  // layer whose output every Forward of this one receives, and must outlive it. False (nothing
  // changes) by default.
  virtual bool ReadInputCodesFrom(Layer& producer) { return false; }

  // Declares whether Backward must compute dLoss/dInput. The first layer of a network needs
  // none (nothing upstream learns), which saves a whole backward-data pass; Backward then
  // returns an empty tensor.
  virtual void SetInputGradRequired(bool required) { input_grad_required_ = required; }

  // Input gradients summed where they are made. Where this layer's input also feeds another path
  // (a residual block's shortcut), the input's gradient is the sum of both paths'; a layer whose
  // Backward makes a pass over its input gradient anyway (a fixed-point convolution scaling its
  // integer sums) can add the other path's there instead of in a pass of its own. Bit-identical
  // to adding afterwards.
  //
  // The next Backward (only) returns dLoss/dInput + `addend`, which must have the input's shape
  // and hold its values until that Backward returns. False (nothing changes) if this layer never
  // adds, or computes no input gradient.
  virtual bool AddToNextInputGrad(const Tensor& addend) { return false; }

  // Gradient ranges passed back between neighbours. A layer that quantises its output gradient
  // (a fixed-point convolution) scans it for its range first; the layer after it, whose Backward
  // writes that gradient anyway (BatchNorm), can gather the range as it writes, a block at a
  // time while each is in cache. Results are bit-identical either way.
  //
  // Producer: whether the next Backward quantises its output gradient, and so takes its range.
  virtual bool WantsGradOutputRange() const { return false; }
  // The range (exactly kernels::MinMax's) of the grad_output the next Backward (only) receives.
  // Called by the layer whose Backward returns that tensor, once it is written.
  virtual void SetNextGradOutputRange(const kernels::Range& range) {}

 protected:
  bool input_grad_required_ = true;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_LAYER_H_
