// GoogLeNet (Inception v1) with BatchNorm after every convolution. The ImageNet layout has the
// 7x7 stem and the paper's pools; the small-input variant replaces the stem with one 3x3
// convolution to 192 channels and drops the first two pools. Inception branches: 1x1; 1x1 -> 3x3;
// 1x1 -> 5x5; 3x3 max pool -> 1x1, concatenated along channels.
#include "absl/strings/str_cat.h"
#include "worker/models/layers.h"
#include "worker/models/model.h"

namespace muppet {
namespace {

using namespace model_layers;

struct InceptionWidths {
  const char* name;
  int64_t b1, b2_reduce, b2, b3_reduce, b3, b4;
  int64_t out() const { return b1 + b2 + b3 + b4; }
};

constexpr InceptionWidths kInceptions[] = {
    {"3a", 64, 96, 128, 16, 32, 32},     {"3b", 128, 128, 192, 32, 96, 64},
    {"4a", 192, 96, 208, 16, 48, 64},    {"4b", 160, 112, 224, 24, 64, 64},
    {"4c", 128, 128, 256, 24, 64, 64},   {"4d", 112, 144, 288, 32, 64, 64},
    {"4e", 256, 160, 320, 32, 128, 128}, {"5a", 256, 160, 320, 32, 128, 128},
    {"5b", 384, 192, 384, 48, 128, 128},
};

std::unique_ptr<Layer> Inception(const InceptionWidths& w, int64_t in) {
  const std::string name = absl::StrCat("inception", w.name);
  std::vector<std::unique_ptr<Layer>> branches;
  auto b1 = std::make_unique<Sequential>();
  ConvBnRelu(*b1, name + ".branch1", in, w.b1, 1, 1, 0);
  auto b2 = std::make_unique<Sequential>();
  ConvBnRelu(*b2, name + ".branch2.0", in, w.b2_reduce, 1, 1, 0);
  ConvBnRelu(*b2, name + ".branch2.1", w.b2_reduce, w.b2, 3, 1, 1);
  auto b3 = std::make_unique<Sequential>();
  ConvBnRelu(*b3, name + ".branch3.0", in, w.b3_reduce, 1, 1, 0);
  ConvBnRelu(*b3, name + ".branch3.1", w.b3_reduce, w.b3, 5, 1, 2);
  auto b4 = std::make_unique<Sequential>();
  b4->Add(MaxPool(3, 1, 1));
  ConvBnRelu(*b4, name + ".branch4", in, w.b4, 1, 1, 0);
  branches.push_back(std::move(b1));
  branches.push_back(std::move(b2));
  branches.push_back(std::move(b3));
  branches.push_back(std::move(b4));
  return std::make_unique<Concat>(std::move(branches));
}

}  // namespace

std::unique_ptr<Sequential> BuildGooglenet(const ModelConfig& c, bool small_input) {
  auto net = std::make_unique<Sequential>();
  int64_t channels = 192;
  if (small_input) {
    ConvBnRelu(*net, "stem", c.in_channels, 192, 3, 1, 1);
  } else {
    ConvBnRelu(*net, "stem.1", c.in_channels, 64, 7, 2, 3);
    net->Add(MaxPool(3, 2, 0, /*ceil_mode=*/true));
    ConvBnRelu(*net, "stem.2", 64, 64, 1, 1, 0);
    ConvBnRelu(*net, "stem.3", 64, 192, 3, 1, 1);
    net->Add(MaxPool(3, 2, 0, /*ceil_mode=*/true));
  }
  for (const InceptionWidths& w : kInceptions) {
    // Downsample before stages 4 and 5.
    if (w.name == std::string("4a") || w.name == std::string("5a")) {
      net->Add(small_input ? MaxPool(3, 2, 1) : MaxPool(3, 2, 0, /*ceil_mode=*/true));
    }
    net->Add(Inception(w, channels));
    channels = w.out();
  }
  net->Add(std::make_unique<GlobalAvgPool>());
  net->Add(std::make_unique<Dropout>(0.4, c.seed ^ 0x600613u));
  net->Add(std::make_unique<Linear>("fc", channels, c.num_classes));
  return net;
}

}  // namespace muppet
