#include "worker/nn/containers.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/relu_grad.h"
#include "worker/nn/batch_norm.h"
#include "worker/nn/elementwise.h"
#include "worker/nn/parallel.h"

namespace muppet {
namespace {

// out = max(y + b, floor), y a BatchNorm's described output (layer.h): its values computed in
// the same pass as the add.
void AffineAddInto(const kernels::ChannelAffineRows& y, const Tensor& b, Tensor& out, float floor) {
  MUPPET_CHECK(y.x.rows * y.x.channels == b.size())
      << y.x.rows << " x " << y.x.channels << " vs " << ShapeString(b.shape());
  out.Resize(b.shape());
  WriteChannelAffine(y, out.data(), {.values = b.data(), .floor = floor});
}

void CopyInto(const Tensor& from, Tensor& to) {
  to.Resize(from.shape());
  std::memcpy(to.data(), from.data(), from.size() * sizeof(float));
}

}  // namespace

Sequential::Sequential(std::vector<std::unique_ptr<Layer>> layers) : layers_(std::move(layers)) {}

const Tensor& Sequential::Forward(const Tensor& input, Mode mode) {
  input_ = &input;
  const Tensor* x = &input;
  for (auto& layer : layers_) x = &layer->Forward(*x, mode);
  return *x;
}

const Tensor& Sequential::Backward(const Tensor& grad_output) {
  const Tensor* g = &grad_output;
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) g = &(*it)->Backward(*g);
  return *g;
}

Shape Sequential::OutputShape(const Shape& input) const {
  Shape shape = input;
  for (const auto& layer : layers_) {
    shape = layer->OutputShape(shape);
    // An input too small for a layer: stop here so the caller sees the empty dimension.
    if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 1; })) return shape;
  }
  return shape;
}

int64_t Sequential::ActivationElements(const Shape& input) const {
  int64_t n = 0;
  Shape shape = input;
  for (const auto& layer : layers_) {
    n += layer->ActivationElements(shape);
    shape = layer->OutputShape(shape);
  }
  return n;
}

void Sequential::CollectParameters(std::vector<Parameter*>& out) {
  for (auto& layer : layers_) layer->CollectParameters(out);
}

void Sequential::AttachPrecision(NumericPrecision* precision, int& next_id) {
  for (auto& layer : layers_) layer->AttachPrecision(precision, next_id);
  for (size_t i = 1; i < layers_.size(); ++i) layers_[i]->ReadInputCodesFrom(*layers_[i - 1]);
}

bool Sequential::DeferOutput() { return !layers_.empty() && layers_.back()->DeferOutput(); }

const kernels::ChannelAffineRows* Sequential::deferred_output() const {
  return layers_.empty() ? nullptr : layers_.back()->deferred_output();
}

void Sequential::WriteDeferredOutput() {
  if (!layers_.empty()) layers_.back()->WriteDeferredOutput();
}

void Sequential::CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) {
  for (auto& layer : layers_) layer->CollectBuffers(out);
}

void Sequential::SetInputGradRequired(bool required) {
  Layer::SetInputGradRequired(required);
  if (!layers_.empty()) layers_.front()->SetInputGradRequired(required);
}

bool Sequential::AddToNextInputGrad(const Tensor& addend) {
  return !layers_.empty() && layers_.front()->AddToNextInputGrad(addend);
}

Residual::Residual(std::unique_ptr<Layer> main, std::unique_ptr<Layer> shortcut, bool relu)
    : main_(std::move(main)), shortcut_(std::move(shortcut)), relu_(relu) {}

const Tensor& Residual::Forward(const Tensor& input, Mode mode) {
  const Tensor& main = main_->Forward(input, mode);
  const Tensor& shortcut = shortcut_ ? shortcut_->Forward(input, mode) : input;
  const float floor = relu_ ? 0.0f : -INFINITY;
  if (const kernels::ChannelAffineRows* y = main_->deferred_output()) {
    AffineAddInto(*y, shortcut, output_, floor);
  } else {
    AddInto(main, shortcut, output_, floor);
  }
  return output_;
}

const Tensor& Residual::Backward(const Tensor& grad_output) {
  const Tensor* g = &grad_output;
  if (relu_) {
    masked_grad_.Resize(grad_output.shape());
    ParallelFor(grad_output.size(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        masked_grad_[i] = kernels::ReluGrad(grad_output[i], output_[i]);
    });
    g = &masked_grad_;
  }
  // d(main + shortcut)/dx: the gradient flows unchanged into both paths, and the input's
  // gradient is the sum of theirs, made by main's first layer where it can (layer.h).
  const Tensor& shortcut_grad = shortcut_ ? shortcut_->Backward(*g) : *g;
  if (main_->AddToNextInputGrad(shortcut_grad)) return main_->Backward(*g);
  AddInto(main_->Backward(*g), shortcut_grad, grad_input_);
  return grad_input_;
}

int64_t Residual::ActivationElements(const Shape& input) const {
  int64_t n =
      2 * NumElements(OutputShape(input)) + NumElements(input) + main_->ActivationElements(input);
  if (shortcut_ != nullptr) n += shortcut_->ActivationElements(input);
  return n;
}

void Residual::CollectParameters(std::vector<Parameter*>& out) {
  main_->CollectParameters(out);
  if (shortcut_) shortcut_->CollectParameters(out);
}

void Residual::AttachPrecision(NumericPrecision* precision, int& next_id) {
  main_->AttachPrecision(precision, next_id);
  if (shortcut_) shortcut_->AttachPrecision(precision, next_id);
  main_->DeferOutput();  // A BatchNorm at main's end then computes its output in the add.
}

void Residual::CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) {
  main_->CollectBuffers(out);
  if (shortcut_) shortcut_->CollectBuffers(out);
}

Concat::Concat(std::vector<std::unique_ptr<Layer>> branches)
    : branches_(std::move(branches)), channels_(branches_.size()) {}

Shape Concat::OutputShape(const Shape& input) const {
  Shape shape = branches_.front()->OutputShape(input);
  shape[1] = 0;
  for (const auto& branch : branches_) shape[1] += branch->OutputShape(input)[1];
  return shape;
}

int64_t Concat::ActivationElements(const Shape& input) const {
  int64_t n = 2 * NumElements(OutputShape(input)) + NumElements(input);
  for (const auto& branch : branches_) n += branch->ActivationElements(input);
  return n;
}

const Tensor& Concat::Forward(const Tensor& input, Mode mode) {
  output_.Resize(OutputShape(input.shape()));
  const int64_t pixels = output_.n() * output_.h() * output_.w();
  const int64_t total = output_.c();
  int64_t offset = 0;
  for (size_t b = 0; b < branches_.size(); ++b) {
    const Tensor& y = branches_[b]->Forward(input, mode);
    const int64_t c = channels_[b] = y.c();
    ParallelFor(
        pixels,
        [&](int64_t begin, int64_t end) {
          for (int64_t p = begin; p < end; ++p) {
            std::memcpy(output_.data() + p * total + offset, y.data() + p * c, c * sizeof(float));
          }
        },
        c);
    offset += c;
  }
  return output_;
}

const Tensor& Concat::Backward(const Tensor& grad_output) {
  const int64_t pixels = grad_output.n() * grad_output.h() * grad_output.w();
  const int64_t total = grad_output.c();
  int64_t offset = 0;
  for (size_t b = 0; b < branches_.size(); ++b) {
    const int64_t c = channels_[b];
    branch_grad_.Resize({grad_output.n(), c, grad_output.h(), grad_output.w()});
    ParallelFor(
        pixels,
        [&](int64_t begin, int64_t end) {
          for (int64_t p = begin; p < end; ++p) {
            std::memcpy(branch_grad_.data() + p * c, grad_output.data() + p * total + offset,
                        c * sizeof(float));
          }
        },
        c);
    offset += c;
    const Tensor& g = branches_[b]->Backward(branch_grad_);
    if (b == 0) {
      CopyInto(g, grad_input_);
    } else {
      ParallelFor(g.size(), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) grad_input_[i] += g[i];
      });
    }
  }
  return grad_input_;
}

void Concat::CollectParameters(std::vector<Parameter*>& out) {
  for (auto& branch : branches_) branch->CollectParameters(out);
}

void Concat::AttachPrecision(NumericPrecision* precision, int& next_id) {
  for (auto& branch : branches_) branch->AttachPrecision(precision, next_id);
}

void Concat::CollectBuffers(std::vector<std::pair<std::string, Tensor*>>& out) {
  for (auto& branch : branches_) branch->CollectBuffers(out);
}

}  // namespace muppet
