// AlexNet's small-input variant used in CIFAR work (as in the MuPPET experiments): the five
// convolutions of AlexNet with an 11x11 stride-4 stem, 2x2 pools, and a single linear classifier.
#include "worker/models/layers.h"
#include "worker/models/model.h"

namespace muppet {

using namespace model_layers;

std::unique_ptr<Sequential> BuildAlexnet(const ModelConfig& c) {
  auto net = std::make_unique<Sequential>();
  net->Add(Conv("features.0", c.in_channels, 64, 11, 4, 5));
  net->Add(std::make_unique<Relu>());
  net->Add(MaxPool(2, 2));
  net->Add(Conv("features.3", 64, 192, 5, 1, 2));
  net->Add(std::make_unique<Relu>());
  net->Add(MaxPool(2, 2));
  net->Add(Conv("features.6", 192, 384, 3, 1, 1));
  net->Add(std::make_unique<Relu>());
  net->Add(Conv("features.8", 384, 256, 3, 1, 1));
  net->Add(std::make_unique<Relu>());
  net->Add(Conv("features.10", 256, 256, 3, 1, 1));
  net->Add(std::make_unique<Relu>());
  net->Add(MaxPool(2, 2));
  const Shape features = net->OutputShape({1, c.in_channels, c.height, c.width});
  net->Add(std::make_unique<Linear>("classifier", NumElements(features), c.num_classes));
  return net;
}

}  // namespace muppet
