// How a fixed-point layer pass computes, chosen per layer, pass, input shape and code width.
//
// - kInteger: muppet's integer kernels on the codes (kernels/cpu), exact int32 accumulation.
// - kGrid: the same codes put back on their grid as floats, then oneDNN's FP32 primitive: the
//   authors' reference numerics (identical codes, FP32 accumulation), at FP32's speed plus the
//   conversion.
// - kAuto: at a pass's first use for a shape and width, run both once untimed, then time both
//   (twice each, keeping each one's fastest) and keep the faster for the rest of the run, as
//   cuDNN's benchmark mode does.
//   Timings differ between runs, so auto trades bit-reproducibility for speed; a forced route
//   is reproducible.
#ifndef MUPPET_WORKER_NN_ROUTE_H_
#define MUPPET_WORKER_NN_ROUTE_H_

#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/clock.h"
#include "kernels/cpu/fixed_point.h"
#include "worker/tensor/tensor.h"

namespace muppet {

enum class FixedPointRoute { kAuto, kInteger, kGrid };
enum class LayerPass { kForward, kBackwardData, kBackwardWeights };

absl::string_view RouteName(FixedPointRoute route);  // "auto", "integer", "grid".
absl::string_view PassName(LayerPass pass);          // "forward", "backward_data", ...

// One decision: which route a layer pass takes for an input shape and code width.
struct RouteChoice {
  std::string layer;
  LayerPass pass = LayerPass::kForward;
  std::string shape;  // The layer's input shape, "128x16x32x32".
  // 8 for int8 codes (word lengths up to 8), 16 for int16; on the GPU 12 for its FP16 codes of
  // 9-12 bits.
  int code_bits = 8;
  FixedPointRoute route = FixedPointRoute::kInteger;
  bool measured = false;  // Chosen by timing (kAuto), not forced.
  double integer_seconds = 0;
  double grid_seconds = 0;
};

// A layer's routes, remembered per (pass, shape, width). Not thread-safe: one per layer.
class RouteTable {
 public:
  // `clock` gives seconds (tests inject one).
  explicit RouteTable(std::function<double()> clock = SteadySeconds) : clock_(std::move(clock)) {}

  // The route of `pass` for `shape` and `code_bits` under `mode`, timing the candidates at first
  // use under kAuto: `run(route)` must compute the pass by that route, leaving only the last
  // run's results, and `undo()` must restore what a run counts (saturations), so that trials
  // leave no trace. The choice is appended to `log` (may be null) the first time it is made;
  // under kAuto, a choice for this layer that `log` already holds (a run resumed from a
  // checkpoint) is taken as it is.
  FixedPointRoute Choose(absl::string_view layer, LayerPass pass, const Shape& shape, int code_bits,
                         FixedPointRoute mode, const std::function<void(FixedPointRoute)>& run,
                         const std::function<void()>& undo, std::vector<RouteChoice>* log);

 private:
  std::function<double()> clock_;
  std::map<std::tuple<LayerPass, Shape, int>, FixedPointRoute> chosen_;
};

// The grid route's operand: a step's codes back on their grid as floats, converted at first use
// after each Invalidate (once per step, whichever passes take the grid route).
class GridTensor {
 public:
  void Invalidate() { ready_ = false; }
  const Tensor& Of(const kernels::Quantized& codes, const Shape& shape);

 private:
  Tensor values_;
  bool ready_ = false;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_NN_ROUTE_H_
