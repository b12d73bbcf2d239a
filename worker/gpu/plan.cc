#include "worker/gpu/plan.h"

#include <string>
#include <typeinfo>

#include "absl/strings/str_cat.h"
#include "worker/nn/batch_norm.h"
#include "worker/nn/containers.h"
#include "worker/nn/conv2d.h"
#include "worker/nn/elementwise.h"
#include "worker/nn/linear.h"
#include "worker/nn/pooling.h"

namespace muppet::gpu {
namespace {

absl::StatusOr<GpuOp> Plan(Layer& layer, const Shape& input, const std::string& where);

// "layer 3.main.0" for messages; the whole network at the root.
std::string Name(const std::string& where) {
  return where.empty() ? "the network" : absl::StrCat("layer ", where);
}

absl::Status Unsupported(const std::string& where, const std::string& what) {
  return absl::UnimplementedError(
      absl::StrCat(Name(where), ": ", what, " has no GPU counterpart yet"));
}

absl::StatusOr<GpuOp::Kind> KindOf(Layer& layer, const std::string& where) {
  using Kind = GpuOp::Kind;
  if (dynamic_cast<Sequential*>(&layer)) return Kind::kSequential;
  if (dynamic_cast<Residual*>(&layer)) return Kind::kResidual;
  if (dynamic_cast<Conv2d*>(&layer)) return Kind::kConv;
  if (dynamic_cast<BatchNorm2d*>(&layer)) return Kind::kBatchNorm;
  if (dynamic_cast<Relu*>(&layer)) return Kind::kRelu;
  if (dynamic_cast<GlobalAvgPool*>(&layer)) return Kind::kGlobalAvgPool;
  if (dynamic_cast<Linear*>(&layer)) return Kind::kLinear;
  if (auto* pool = dynamic_cast<Pool2d*>(&layer)) {
    if (pool->options().ceil_mode) {
      return Unsupported(where, "pooling whose output size rounds up (ceil_mode)");
    }
    return pool->kind() == Pool2d::Kind::kMax ? Kind::kMaxPool : Kind::kAveragePool;
  }
  if (dynamic_cast<Dropout*>(&layer)) return Unsupported(where, "Dropout");
  if (dynamic_cast<Concat*>(&layer)) return Unsupported(where, "Concat (an Inception block)");
  return Unsupported(where, absl::StrCat("a layer of type ", typeid(layer).name()));
}

absl::Status CheckShape(const Shape& shape, const std::string& where) {
  for (int64_t d : shape) {
    if (d < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(Name(where), ": shape ", ShapeString(shape), " is empty"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<GpuOp> Plan(Layer& layer, const Shape& input, const std::string& where) {
  absl::StatusOr<GpuOp::Kind> kind = KindOf(layer, where);
  if (!kind.ok()) return kind.status();
  GpuOp op{.kind = *kind, .layer = &layer, .input = input, .output = layer.OutputShape(input)};
  if (absl::Status s = CheckShape(op.output, where); !s.ok()) return s;
  if (op.kind != GpuOp::Kind::kLinear && op.kind != GpuOp::Kind::kSequential && input.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(Name(where), ": takes (N, C, H, W), got ", ShapeString(input)));
  }
  const auto child = [&](Layer& l, const Shape& in, const std::string& name) -> absl::Status {
    absl::StatusOr<GpuOp> c = Plan(l, in, where.empty() ? name : absl::StrCat(where, ".", name));
    if (!c.ok()) return c.status();
    op.children.push_back(*std::move(c));
    return absl::OkStatus();
  };
  if (auto* seq = dynamic_cast<Sequential*>(&layer)) {
    Shape shape = input;
    for (size_t i = 0; i < seq->layers().size(); ++i) {
      if (absl::Status s = child(*seq->layers()[i], shape, std::to_string(i)); !s.ok()) return s;
      shape = op.children.back().output;
    }
  } else if (auto* res = dynamic_cast<Residual*>(&layer)) {
    if (absl::Status s = child(res->main(), input, "main"); !s.ok()) return s;
    if (res->shortcut() != nullptr) {
      if (absl::Status s = child(*res->shortcut(), input, "shortcut"); !s.ok()) return s;
    }
    const Shape& shortcut_out = res->shortcut() != nullptr ? op.children[1].output : input;
    if (shortcut_out != op.output) {
      return absl::InvalidArgumentError(absl::StrCat(Name(where), ": the shortcut gives ",
                                                     ShapeString(shortcut_out), ", the main path ",
                                                     ShapeString(op.output)));
    }
  }
  return op;
}

}  // namespace

absl::StatusOr<GpuOp> PlanGpu(Layer& network, const Shape& input) {
  if (absl::Status s = CheckShape(input, ""); !s.ok()) return s;
  return Plan(network, input, "");
}

const char* GpuOpName(GpuOp::Kind kind) {
  switch (kind) {
    case GpuOp::Kind::kSequential:
      return "sequential";
    case GpuOp::Kind::kResidual:
      return "residual";
    case GpuOp::Kind::kConv:
      return "conv";
    case GpuOp::Kind::kBatchNorm:
      return "batch_norm";
    case GpuOp::Kind::kRelu:
      return "relu";
    case GpuOp::Kind::kMaxPool:
      return "max_pool";
    case GpuOp::Kind::kAveragePool:
      return "average_pool";
    case GpuOp::Kind::kGlobalAvgPool:
      return "global_avg_pool";
    case GpuOp::Kind::kLinear:
      return "linear";
  }
  return "unknown";
}

}  // namespace muppet::gpu
