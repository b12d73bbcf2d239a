// The numeric precision a model computes in, shared by its layers: FP32, or MuPPET's dynamic
// fixed point at one word length (docs/ALGORITHM.md, section 2).
//
// At a fixed-point level, convolution and linear layers run the integer kernels of
// kernels/cpu on quantised inputs, weights and incoming gradients, and round their outputs and
// weight gradients onto the fixed-point grid; average pooling rounds its output and incoming
// gradient. BatchNorm, ReLU and max pooling stay FP32. Master weights stay FP32 throughout, so
// switching to FP32 needs no conversion: the layers simply stop quantising.
#ifndef MUPPET_WORKER_NN_PRECISION_H_
#define MUPPET_WORKER_NN_PRECISION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kernels/cpu/fixed_point.h"
#include "proto/precision.h"
#include "worker/nn/route.h"

namespace muppet {

struct NumericPrecision {
  int bits = kFp32Bits;  // 32: FP32; 2 to 16: dynamic fixed point.
  kernels::Rounding rounding = kernels::Rounding::kStochastic;
  uint64_t seed = 0;  // Of the run: every layer derives its own rounding streams from it.
  // Forward passes so far; each draws fresh rounding bits. The trainer advances it before
  // every forward pass, and a backward pass uses its forward pass's step.
  uint64_t step = 0;
  int64_t saturations = 0;  // Saturated codes and integer sums, accumulated.
  // The first error a layer met (NaN or infinity in a tensor it quantised: training diverged).
  // Layers cannot return errors from Forward/Backward, so the trainer checks it every step.
  absl::Status error;
  // Set by data-parallel training: layers leave their weight and bias gradients unrounded, and
  // the ranks round them onto a grid they share as they sum them (worker/comm's fixed-point
  // allreduce).
  bool defer_gradient_rounding = false;
  // How fixed-point passes compute (route.h), and every choice made so far, in order.
  FixedPointRoute route = FixedPointRoute::kAuto;
  std::vector<RouteChoice> route_choices;

  bool fixed_point() const { return bits < kFp32Bits; }
};

// Tensors a layer rounds onto the fixed-point grid outside the kernels, each on its own stream.
enum class Rounded : uint64_t { kOutput, kOutputGradient, kWeightGradient, kBias, kBiasGradient };

// Where one quantisation's rounding bits come from (kernels/cpu/quantize.h).
struct RoundingBits {
  uint64_t seed = 0;
  uint64_t stream = 0;
};

// A layer's view of the model's precision: its own rounding streams, and error bookkeeping.
class LayerPrecision {
 public:
  // Binds the layer named `name` to `precision` (may be null: FP32 for ever) as layer number
  // `id`, unique within the model.
  void Attach(NumericPrecision* precision, int id, std::string name);

  bool fixed_point() const { return precision_ != nullptr && precision_->fixed_point(); }

  // Options for the kernels' operand quantisation at this step.
  kernels::FixedPointOptions Options() const;

  // Quantises an operand for the kernels; false (error recorded) if it failed. `range` is x's
  // range where its producer gathered it (kernels::RangeScan), saving a scan of x; nullopt scans.
  bool Quantize(std::span<const float> x, kernels::Operand operand, kernels::Quantized& out,
                std::optional<kernels::Range> range = std::nullopt);
  // The same for a tensor described rather than written (fixed_point.h).
  bool Quantize(const kernels::ChannelAffineRows& x, kernels::Operand operand,
                kernels::Quantized& out);

  // Rounds x onto its fixed-point grid in place; false (error recorded) if it failed. Weight and
  // bias gradients are left as they are while the precision defers their rounding. `range` as
  // for Quantize.
  bool Round(std::span<float> x, Rounded what, std::optional<kernels::Range> range = std::nullopt);

  // The codes Round(x, what) would put x on, left in `out` instead of written back into x: the
  // same exponent and rounding bits. False (error recorded) if it failed. Not for the gradients
  // whose rounding a precision may defer. `range` as for Quantize.
  bool RoundToCodes(std::span<const float> x, Rounded what, kernels::Quantized& out,
                    std::optional<kernels::Range> range = std::nullopt);

  // Records the saturations of a kernel call, or its error; false on error.
  bool Account(const absl::StatusOr<int64_t>& saturations, const char* what);

  // For an engine that quantises elsewhere (the GPU's), to draw the bits this layer would: those
  // of operand `operand` of the kernels at this step (as Quantize), and of tensor `what` (as
  // Round). Only while fixed_point().
  RoundingBits OperandBits(kernels::Operand operand) const;
  RoundingBits RoundedBits(Rounded what) const;
  // Whether Round leaves `what` as it is (gradients while the precision defers their rounding).
  bool Defers(Rounded what) const;
  // The model's precision (null when never attached).
  NumericPrecision* numeric() const { return precision_; }
  // The layer's name, as route choices and errors give it.
  const std::string& name() const { return name_; }

  // Runs one fixed-point pass of this layer on an input of `shape` by the route the precision
  // asks for: `run(route)` computes it. Under auto, the first use of a (pass, shape, width) times
  // both routes first (their saturations and errors undone) and logs the choice.
  void RunPass(LayerPass pass, const Shape& shape, const std::function<void(FixedPointRoute)>& run);

 private:
  bool Fail(const absl::Status& status, const char* what);
  // Records a quantisation's saturations, or its error; false on error.
  bool AccountCodes(const absl::Status& status, const char* what, const kernels::Quantized& codes);
  // The stream of the tensors this layer rounds itself at this step.
  uint64_t RoundingStream(Rounded what) const;

  NumericPrecision* precision_ = nullptr;
  int id_ = 0;
  std::string name_;
  RouteTable routes_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_PRECISION_H_
