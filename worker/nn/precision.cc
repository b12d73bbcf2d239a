#include "worker/nn/precision.h"

#include "absl/strings/str_cat.h"
#include "base/random.h"

namespace muppet {
namespace {

// Two independent seeds per layer: one for the kernels' operand streams (step * 3 + operand),
// one for the tensors the layer rounds itself (step * 8 + Rounded), so no two quantisations in
// a run share rounding bits.
uint64_t OperandSeed(uint64_t seed, int id) { return CounterHash(seed, 2 * id); }
uint64_t RoundingSeed(uint64_t seed, int id) { return CounterHash(seed, 2 * id + 1); }

const char* RoundedName(Rounded what) {
  switch (what) {
    case Rounded::kOutput:
      return "output";
    case Rounded::kOutputGradient:
      return "output gradient";
    case Rounded::kWeightGradient:
      return "weight gradient";
    case Rounded::kBias:
      return "bias";
    case Rounded::kBiasGradient:
      return "bias gradient";
  }
  return "tensor";
}

const char* OperandName(kernels::Operand operand) {
  switch (operand) {
    case kernels::Operand::kInput:
      return "input";
    case kernels::Operand::kWeights:
      return "weights";
    case kernels::Operand::kGradient:
      return "incoming gradient";
  }
  return "operand";
}

}  // namespace

void LayerPrecision::Attach(NumericPrecision* precision, int id, std::string name) {
  precision_ = precision;
  id_ = id;
  name_ = std::move(name);
}

kernels::FixedPointOptions LayerPrecision::Options() const {
  return {.word_length = precision_->bits,
          .rounding = precision_->rounding,
          .seed = OperandSeed(precision_->seed, id_),
          .step = precision_->step};
}

bool LayerPrecision::Quantize(std::span<const float> x, kernels::Operand operand,
                              kernels::Quantized& out, std::optional<kernels::Range> range) {
  return AccountCodes(kernels::QuantizeOperand(Options(), x, range, operand, out),
                      OperandName(operand), out);
}

bool LayerPrecision::Quantize(const kernels::ChannelAffineRows& x, kernels::Operand operand,
                              kernels::Quantized& out) {
  return AccountCodes(kernels::QuantizeOperand(Options(), x, operand, out), OperandName(operand),
                      out);
}

bool LayerPrecision::Defers(Rounded what) const {
  return precision_->defer_gradient_rounding &&
         (what == Rounded::kWeightGradient || what == Rounded::kBiasGradient);
}

RoundingBits LayerPrecision::OperandBits(kernels::Operand operand) const {
  const kernels::FixedPointOptions options = Options();
  return {.seed = options.seed, .stream = kernels::OperandStream(options, operand)};
}

RoundingBits LayerPrecision::RoundedBits(Rounded what) const {
  return {.seed = RoundingSeed(precision_->seed, id_), .stream = RoundingStream(what)};
}

bool LayerPrecision::Round(std::span<float> x, Rounded what, std::optional<kernels::Range> range) {
  if (Defers(what)) return true;
  const RoundingBits bits = RoundedBits(what);
  return Account(kernels::RoundToFixedPoint(x, range, precision_->bits, precision_->rounding,
                                            bits.seed, bits.stream),
                 RoundedName(what));
}

bool LayerPrecision::RoundToCodes(std::span<const float> x, Rounded what, kernels::Quantized& out,
                                  std::optional<kernels::Range> range) {
  const RoundingBits bits = RoundedBits(what);
  return AccountCodes(kernels::QuantizeTensorInto(x, range, precision_->bits, precision_->rounding,
                                                  bits.seed, bits.stream, out),
                      RoundedName(what), out);
}

uint64_t LayerPrecision::RoundingStream(Rounded what) const {
  return precision_->step * 8 + static_cast<uint64_t>(what);
}

void LayerPrecision::RunPass(LayerPass pass, const Shape& shape,
                             const std::function<void(FixedPointRoute)>& run) {
  const int64_t saturations = precision_->saturations;
  const absl::Status error = precision_->error;
  const FixedPointRoute route = routes_.Choose(
      name_, pass, shape, precision_->bits <= 8 ? 8 : 16, precision_->route, run,
      [&] {
        precision_->saturations = saturations;
        precision_->error = error;
      },
      &precision_->route_choices);
  run(route);
}

bool LayerPrecision::Account(const absl::StatusOr<int64_t>& saturations, const char* what) {
  if (!saturations.ok()) return Fail(saturations.status(), what);
  precision_->saturations += *saturations;
  return true;
}

bool LayerPrecision::AccountCodes(const absl::Status& status, const char* what,
                                  const kernels::Quantized& codes) {
  if (!status.ok()) return Fail(status, what);
  precision_->saturations += codes.saturated;
  return true;
}

bool LayerPrecision::Fail(const absl::Status& status, const char* what) {
  if (precision_->error.ok()) {
    precision_->error = absl::Status(
        status.code(),
        absl::StrCat(name_, ": ", what, " at step ", precision_->step, ": ", status.message()));
  }
  return false;
}

}  // namespace muppet
