// Short constructors for the model builders.
#ifndef MUPPET_WORKER_MODELS_LAYERS_H_
#define MUPPET_WORKER_MODELS_LAYERS_H_

#include <memory>
#include <string>

#include "worker/nn/batch_norm.h"
#include "worker/nn/containers.h"
#include "worker/nn/conv2d.h"
#include "worker/nn/elementwise.h"
#include "worker/nn/linear.h"
#include "worker/nn/pooling.h"

namespace muppet::model_layers {

inline std::unique_ptr<Conv2d> Conv(const std::string& name, int64_t in, int64_t out,
                                    int64_t kernel, int64_t stride, int64_t padding,
                                    bool bias = true) {
  return std::make_unique<Conv2d>(name, Conv2dOptions{.in_channels = in,
                                                      .out_channels = out,
                                                      .kernel = kernel,
                                                      .stride = stride,
                                                      .padding = padding,
                                                      .bias = bias});
}

// Convolution without bias, then BatchNorm with (optionally) a fused ReLU, appended to `seq`.
inline void ConvBnRelu(Sequential& seq, const std::string& name, int64_t in, int64_t out,
                       int64_t kernel, int64_t stride, int64_t padding, bool relu = true) {
  seq.Add(Conv(name + ".conv", in, out, kernel, stride, padding, /*bias=*/false));
  seq.Add(std::make_unique<BatchNorm2d>(name + ".bn", out, relu));
}

inline std::unique_ptr<Pool2d> MaxPool(int64_t kernel, int64_t stride, int64_t padding = 0,
                                       bool ceil_mode = false) {
  return std::make_unique<Pool2d>(
      Pool2d::Kind::kMax,
      PoolOptions{.kernel = kernel, .stride = stride, .padding = padding, .ceil_mode = ceil_mode});
}

}  // namespace muppet::model_layers

#endif  // MUPPET_WORKER_MODELS_LAYERS_H_
