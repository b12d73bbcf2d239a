// LeNet-5 with ReLU and max pooling; the first convolution pads by 2 so that 28x28 inputs keep
// the classic 32x32 geometry.
#include "worker/models/layers.h"
#include "worker/models/model.h"

namespace muppet {

using namespace model_layers;

std::unique_ptr<Sequential> BuildLenet5(const ModelConfig& c) {
  auto net = std::make_unique<Sequential>();
  net->Add(Conv("conv1", c.in_channels, 6, 5, 1, 2));
  net->Add(std::make_unique<Relu>());
  net->Add(MaxPool(2, 2));
  net->Add(Conv("conv2", 6, 16, 5, 1, 0));
  net->Add(std::make_unique<Relu>());
  net->Add(MaxPool(2, 2));
  const Shape features = net->OutputShape({1, c.in_channels, c.height, c.width});
  net->Add(std::make_unique<Linear>("fc1", NumElements(features), 120));
  net->Add(std::make_unique<Relu>());
  net->Add(std::make_unique<Linear>("fc2", 120, 84));
  net->Add(std::make_unique<Relu>());
  net->Add(std::make_unique<Linear>("fc3", 84, c.num_classes));
  return net;
}

}  // namespace muppet
