#include "worker/models/model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/random.h"

namespace muppet {
namespace {

// He (Kaiming) normal initialisation of convolution and linear weights: N(0, 2 / fan_in).
// Biases start at zero, BatchNorm at gamma = 1, beta = 0 (as constructed). Each parameter draws
// from its own stream, so adding a layer does not reshuffle the others.
void HeInitialise(const std::vector<Parameter*>& parameters, uint64_t seed) {
  for (size_t k = 0; k < parameters.size(); ++k) {
    Tensor& w = parameters[k]->value;
    if (w.rank() < 2) continue;
    const int64_t fan_in = w.size() / w.dim(0);
    const double stddev = std::sqrt(2.0 / fan_in);
    Rng rng(CounterHash(seed, k));
    for (int64_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(rng.Normal() * stddev);
  }
}

}  // namespace

Model::Model(std::string name, std::unique_ptr<Sequential> network, Shape input_shape)
    : name_(std::move(name)), network_(std::move(network)), input_shape_(std::move(input_shape)) {
  network_->CollectParameters(parameters_);
  network_->CollectBuffers(buffers_);
  // Nothing upstream of the first layer learns: skip its backward-data pass.
  network_->SetInputGradRequired(false);
  int next_id = 0;
  network_->AttachPrecision(precision_.get(), next_id);
}

Shape Model::OutputShape(int64_t batch) const {
  Shape input = {batch};
  input.insert(input.end(), input_shape_.begin(), input_shape_.end());
  return network_->OutputShape(input);
}

int64_t Model::NumParameterElements() const {
  int64_t n = 0;
  for (const Parameter* p : parameters_) n += p->value.size();
  return n;
}

int64_t Model::ActivationElements(int64_t batch) const {
  Shape input = {batch};
  input.insert(input.end(), input_shape_.begin(), input_shape_.end());
  return network_->ActivationElements(input);
}

absl::StatusOr<std::unique_ptr<Model>> BuildModel(const ModelConfig& c) {
  using Variant = ModelConfig::Variant;
  const bool has_variants = c.name == "resnet18" || c.name == "googlenet";
  if (c.variant != Variant::kAuto && !has_variants) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", c.name, "\" has no layout variants"));
  }
  if (c.in_channels < 1 || c.num_classes < 2 || c.height < 1 || c.width < 1) {
    return absl::InvalidArgumentError(absl::StrCat("model \"", c.name, "\": invalid input ",
                                                   c.in_channels, "x", c.height, "x", c.width,
                                                   " or class count ", c.num_classes));
  }
  const bool small_input = c.variant == Variant::kSmallInput ||
                           (c.variant == Variant::kAuto && c.height <= 64 && c.width <= 64);
  std::unique_ptr<Sequential> net;
  if (c.name == "lenet5") {
    net = BuildLenet5(c);
  } else if (c.name == "resnet20") {
    net = BuildResnet20(c);
  } else if (c.name == "resnet18") {
    net = BuildResnet18(c, small_input);
  } else if (c.name == "alexnet") {
    net = BuildAlexnet(c);
  } else if (c.name == "googlenet") {
    net = BuildGooglenet(c, small_input);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown model \"", c.name, "\"; known: lenet5, resnet20, alexnet, resnet18, googlenet"));
  }
  // Every spatial size must stay positive through the network.
  const Shape out = net->OutputShape({1, c.in_channels, c.height, c.width});
  if (out.size() != 2 || out[1] != c.num_classes) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", c.name, "\": a ", c.height, "x", c.width, " input is too small"));
  }
  auto model =
      std::make_unique<Model>(c.name, std::move(net), Shape{c.in_channels, c.height, c.width});
  HeInitialise(model->parameters(), c.seed);
  return model;
}

}  // namespace muppet
