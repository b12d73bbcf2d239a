#include "worker/nn/route.h"

#include <algorithm>

namespace muppet {

absl::string_view RouteName(FixedPointRoute route) {
  switch (route) {
    case FixedPointRoute::kAuto:
      return "auto";
    case FixedPointRoute::kInteger:
      return "integer";
    case FixedPointRoute::kGrid:
      return "grid";
  }
  return "unknown";
}

absl::string_view PassName(LayerPass pass) {
  switch (pass) {
    case LayerPass::kForward:
      return "forward";
    case LayerPass::kBackwardData:
      return "backward_data";
    case LayerPass::kBackwardWeights:
      return "backward_weights";
  }
  return "unknown";
}

FixedPointRoute RouteTable::Choose(absl::string_view layer, LayerPass pass, const Shape& shape,
                                   int code_bits, FixedPointRoute mode,
                                   const std::function<void(FixedPointRoute)>& run,
                                   const std::function<void()>& undo,
                                   std::vector<RouteChoice>* log) {
  const auto key = std::make_tuple(pass, shape, code_bits);
  const auto it = chosen_.find(key);
  if (it != chosen_.end()) return it->second;
  const std::string shape_text = ShapeString(shape);
  // A choice the log already holds (restored from a checkpoint) is kept, not timed again.
  if (log != nullptr && mode == FixedPointRoute::kAuto) {
    for (const RouteChoice& c : *log) {
      if (c.layer == layer && c.pass == pass && c.shape == shape_text && c.code_bits == code_bits) {
        chosen_[key] = c.route;
        return c.route;
      }
    }
  }
  RouteChoice choice{.layer = std::string(layer),
                     .pass = pass,
                     .shape = shape_text,
                     .code_bits = code_bits,
                     .route = mode};
  if (mode == FixedPointRoute::kAuto) {
    // One untimed run of each first: a route's first run pays one-time costs (primitive
    // creation, scratch pages, the grid operands' buffers) that the training steps do not.
    double best[2] = {1e300, 1e300};  // integer, grid
    for (int trial = 0; trial < 6; ++trial) {
      const FixedPointRoute r = trial % 2 == 0 ? FixedPointRoute::kInteger : FixedPointRoute::kGrid;
      const double start = clock_();
      run(r);
      if (trial >= 2) best[trial % 2] = std::min(best[trial % 2], clock_() - start);
      undo();
    }
    choice.measured = true;
    choice.integer_seconds = best[0];
    choice.grid_seconds = best[1];
    choice.route = best[1] < best[0] ? FixedPointRoute::kGrid : FixedPointRoute::kInteger;
  }
  chosen_[key] = choice.route;
  if (log != nullptr) log->push_back(choice);
  return choice.route;
}

const Tensor& GridTensor::Of(const kernels::Quantized& codes, const Shape& shape) {
  if (!ready_) {
    values_.Resize(shape);
    kernels::Dequantize(codes, values_.span());
    ready_ = true;
  }
  return values_;
}

}  // namespace muppet
