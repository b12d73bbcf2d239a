// A trainable network built by name: its layers, parameters and buffers.
#ifndef MUPPET_WORKER_MODELS_MODEL_H_
#define MUPPET_WORKER_MODELS_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/nn/containers.h"

namespace muppet {

struct ModelConfig {
  std::string name;  // lenet5, resnet20, alexnet, resnet18, googlenet.
  int64_t in_channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  int64_t num_classes = 10;
  // Layout: small-input (CIFAR-style) or ImageNet; unset picks small-input for images of at
  // most 64x64 pixels. Only resnet18 and googlenet have both.
  enum class Variant { kAuto, kSmallInput, kImageNet } variant = Variant::kAuto;
  uint64_t seed = 0;  // For He initialisation and dropout masks.
};

class Model {
 public:
  Model(std::string name, std::unique_ptr<Sequential> network, Shape input_shape);

  // Logits (N, classes) for a batch (N, C, H, W).
  const Tensor& Forward(const Tensor& images, Mode mode) { return network_->Forward(images, mode); }
  // Backpropagates dLoss/dLogits into every parameter's gradient.
  void Backward(const Tensor& grad_logits) { network_->Backward(grad_logits); }

  const std::string& name() const { return name_; }
  // The layers, for an engine that runs them elsewhere (worker/gpu/plan.h).
  Sequential& network() { return *network_; }
  // (C, H, W) of one input image.
  const Shape& input_shape() const { return input_shape_; }
  // Output shape for a batch of `batch` images.
  Shape OutputShape(int64_t batch) const;
  // Every parameter, in a fixed order; names are unique.
  const std::vector<Parameter*>& parameters() const { return parameters_; }
  const std::vector<std::pair<std::string, Tensor*>>& buffers() const { return buffers_; }
  int64_t NumParameterElements() const;
  // Activation-sized floats the layers keep for a batch of `batch` images (Layer's
  // ActivationElements).
  int64_t ActivationElements(int64_t batch) const;

  // The numeric precision every layer computes in (FP32 unless changed); its bits may change
  // between minibatches.
  NumericPrecision& precision() { return *precision_; }
  const NumericPrecision& precision() const { return *precision_; }

 private:
  std::string name_;
  std::unique_ptr<Sequential> network_;
  Shape input_shape_;
  std::vector<Parameter*> parameters_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  // On the heap: layers keep its address.
  std::unique_ptr<NumericPrecision> precision_ = std::make_unique<NumericPrecision>();
};

// Builds and He-initialises the model `config` names. INVALID_ARGUMENT for an unknown name, a
// variant the model lacks, or an input too small for the architecture.
absl::StatusOr<std::unique_ptr<Model>> BuildModel(const ModelConfig& config);

// Architecture builders (in lenet5.cc, resnet.cc, alexnet.cc, googlenet.cc). Each returns the
// network without initialisation; `small_input` selects the CIFAR-style layout.
std::unique_ptr<Sequential> BuildLenet5(const ModelConfig& config);
std::unique_ptr<Sequential> BuildResnet20(const ModelConfig& config);
std::unique_ptr<Sequential> BuildResnet18(const ModelConfig& config, bool small_input);
std::unique_ptr<Sequential> BuildAlexnet(const ModelConfig& config);
std::unique_ptr<Sequential> BuildGooglenet(const ModelConfig& config, bool small_input);

}  // namespace muppet

#endif  // MUPPET_WORKER_MODELS_MODEL_H_
