// ResNets of basic blocks (two 3x3 convolutions). A block that changes shape projects its
// shortcut with a 1x1 convolution and BatchNorm.
#include "absl/strings/str_cat.h"
#include "worker/models/layers.h"
#include "worker/models/model.h"

namespace muppet {
namespace {

using namespace model_layers;

// conv-bn-relu-conv-bn (+ shortcut), then ReLU (fused into the add), appended to `net`.
void AddBasicBlock(Sequential& net, const std::string& name, int64_t in, int64_t out,
                   int64_t stride) {
  auto main = std::make_unique<Sequential>();
  ConvBnRelu(*main, name + ".1", in, out, 3, stride, 1);
  ConvBnRelu(*main, name + ".2", out, out, 3, 1, 1, /*relu=*/false);
  std::unique_ptr<Sequential> shortcut;
  if (stride != 1 || in != out) {
    shortcut = std::make_unique<Sequential>();
    ConvBnRelu(*shortcut, name + ".shortcut", in, out, 1, stride, 0, /*relu=*/false);
  }
  net.Add(std::make_unique<Residual>(std::move(main), std::move(shortcut), /*relu=*/true));
}

void AddStages(Sequential& net, int64_t in, std::initializer_list<int64_t> widths,
               int blocks_per_stage) {
  int stage = 0;
  for (int64_t width : widths) {
    ++stage;
    for (int b = 0; b < blocks_per_stage; ++b) {
      const int64_t stride = (b == 0 && stage > 1) ? 2 : 1;
      AddBasicBlock(net, absl::StrCat("stage", stage, ".", b), in, width, stride);
      in = width;
    }
  }
}

void AddClassifier(Sequential& net, int64_t features, int64_t classes) {
  net.Add(std::make_unique<GlobalAvgPool>());
  net.Add(std::make_unique<Linear>("fc", features, classes));
}

}  // namespace

std::unique_ptr<Sequential> BuildResnet20(const ModelConfig& c) {
  auto net = std::make_unique<Sequential>();
  ConvBnRelu(*net, "stem", c.in_channels, 16, 3, 1, 1);
  AddStages(*net, 16, {16, 32, 64}, 3);
  AddClassifier(*net, 64, c.num_classes);
  return net;
}

std::unique_ptr<Sequential> BuildResnet18(const ModelConfig& c, bool small_input) {
  auto net = std::make_unique<Sequential>();
  if (small_input) {
    ConvBnRelu(*net, "stem", c.in_channels, 64, 3, 1, 1);
  } else {
    ConvBnRelu(*net, "stem", c.in_channels, 64, 7, 2, 3);
    net->Add(MaxPool(3, 2, 1));
  }
  AddStages(*net, 64, {64, 128, 256, 512}, 2);
  AddClassifier(*net, 512, c.num_classes);
  return net;
}

}  // namespace muppet
