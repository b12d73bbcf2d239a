// How a network of the CPU engine's layers maps onto the GPU engine's (gpu_model.h), decided
// without a GPU: the same tree of layers, each checked to have a GPU counterpart, with the shape
// it sees. The GPU engine then builds its layers from the plan and reads their configuration
// and parameters from the CPU layers it names, so both engines train the same models.
#ifndef MUPPET_WORKER_GPU_PLAN_H_
#define MUPPET_WORKER_GPU_PLAN_H_

#include <vector>

#include "absl/status/statusor.h"
#include "worker/nn/layer.h"

namespace muppet::gpu {

struct GpuOp {
  enum class Kind {
    kSequential,     // children in order.
    kResidual,       // children[0] the main path, children[1] the shortcut if it has one.
    kConv,           // Conv2d.
    kBatchNorm,      // BatchNorm2d, its ReLU included.
    kRelu,           // Relu.
    kMaxPool,        // Pool2d of kind kMax.
    kAveragePool,    // Pool2d of kind kAverage.
    kGlobalAvgPool,  // GlobalAvgPool.
    kLinear,         // Linear.
  };
  Kind kind = Kind::kSequential;
  Layer* layer = nullptr;  // The CPU layer: configuration and parameters. Not owned.
  Shape input;             // (N, C, H, W) at the planned batch; Linear's may have any rank.
  Shape output;
  std::vector<GpuOp> children;
};

// The plan of `network` for inputs of `input` shape (batch included). UNIMPLEMENTED naming the
// layer (its path in the tree, e.g. "layer 3.main.0") and what it lacks when the GPU engine has
// no counterpart: Dropout, Concat (GoogLeNet's Inception blocks), pooling whose output size
// rounds up; INVALID_ARGUMENT when a shape has a dimension below 1.
absl::StatusOr<GpuOp> PlanGpu(Layer& network, const Shape& input);

// "sequential", "conv", ... for messages and tests.
const char* GpuOpName(GpuOp::Kind kind);

}  // namespace muppet::gpu

#endif  // MUPPET_WORKER_GPU_PLAN_H_
