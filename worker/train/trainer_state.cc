// Trainer::SaveState and RestoreState: the trainer's side of a checkpoint.
#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/train/trainer.h"

namespace muppet {
namespace {

void Describe(const std::string& name, const Shape& shape, internal::TensorInfo& info) {
  info.set_name(name);
  for (int64_t d : shape) info.add_shape(d);
}

void Append(std::span<const float> values, std::vector<float>& out) {
  out.insert(out.end(), values.begin(), values.end());
}

// Copies the next tensor's values out of `values` at `offset`.
void Take(const std::vector<float>& values, size_t& offset, std::span<float> out) {
  std::memcpy(out.data(), values.data() + offset, out.size_bytes());
  offset += out.size();
}

// INVALID_ARGUMENT naming the first tensor whose name or shape differs from the model's.
absl::Status CheckTensor(const std::string& kind, size_t index, const std::string& name,
                         const Shape& shape, const internal::TensorInfo& saved) {
  const Shape saved_shape(saved.shape().begin(), saved.shape().end());
  if (saved.name() == name && saved_shape == shape) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "section \"run\": ", kind, " ", index, " is ", saved.name(), " ", ShapeString(saved_shape),
      " in the checkpoint, ", name, " ", ShapeString(shape), " in this model"));
}

internal::RouteChoiceRecord ToRecord(const RouteChoice& c) {
  internal::RouteChoiceRecord r;
  r.set_layer(c.layer);
  r.set_pass(static_cast<uint32_t>(c.pass));
  r.set_shape(c.shape);
  r.set_code_bits(static_cast<uint32_t>(c.code_bits));
  r.set_route(static_cast<uint32_t>(c.route));
  r.set_measured(c.measured);
  r.set_integer_seconds(c.integer_seconds);
  r.set_grid_seconds(c.grid_seconds);
  return r;
}

RouteChoice FromRecord(const internal::RouteChoiceRecord& r) {
  return {.layer = r.layer(),
          .pass = static_cast<LayerPass>(r.pass()),
          .shape = r.shape(),
          .code_bits = static_cast<int>(r.code_bits()),
          .route = static_cast<FixedPointRoute>(r.route()),
          .measured = r.measured(),
          .integer_seconds = r.integer_seconds(),
          .grid_seconds = r.grid_seconds()};
}

}  // namespace

void Trainer::SaveState(TrainingCheckpoint& checkpoint) const {
  internal::TrainingState& state = checkpoint.state;
  state.set_model(model_.name());
  state.clear_parameters();
  state.clear_buffers();
  checkpoint.parameters.clear();
  checkpoint.momentum.clear();
  checkpoint.buffers.clear();
  checkpoint.gradient_window.clear();
  const std::vector<Parameter*>& parameters = model_.parameters();
  for (size_t k = 0; k < parameters.size(); ++k) {
    Describe(parameters[k]->name, parameters[k]->value.shape(), *state.add_parameters());
    Append(parameters[k]->value.span(), checkpoint.parameters);
    Append(sgd_.momentum_buffers()[k].span(), checkpoint.momentum);
    const std::vector<double>& sum = window_.sums()[k];
    checkpoint.gradient_window.insert(checkpoint.gradient_window.end(), sum.begin(), sum.end());
  }
  for (const auto& [name, tensor] : model_.buffers()) {
    Describe(name, tensor->shape(), *state.add_buffers());
    Append(tensor->span(), checkpoint.buffers);
  }
  const NumericPrecision& precision = model_.precision();
  state.set_precision_bits(static_cast<uint32_t>(precision.bits));
  state.set_rounding_step(precision.step);
  state.set_saturations(precision.saturations);
  state.clear_route_choices();
  for (const RouteChoice& c : precision.route_choices) *state.add_route_choices() = ToRecord(c);
  state.set_optimizer_started(sgd_.started());
  state.set_policy_epoch(static_cast<uint64_t>(policy_epoch_));
  state.set_policy_iterations(static_cast<uint64_t>(policy_iterations_));
  state.set_policy_loss_sum(policy_tally_.loss_sum);
  state.set_policy_correct(policy_tally_.correct);
  state.set_policy_samples(policy_tally_.samples);
  state.set_rank_gradient_diversity(rank_diversity_);
}

absl::Status Trainer::RestoreState(const TrainingCheckpoint& checkpoint) {
  const internal::TrainingState& state = checkpoint.state;
  if (state.model() != model_.name()) {
    return absl::InvalidArgumentError(absl::StrCat("section \"run\": the checkpoint is of model ",
                                                   state.model(), ", this run trains ",
                                                   model_.name()));
  }
  const std::vector<Parameter*>& parameters = model_.parameters();
  const auto& buffers = model_.buffers();
  if (static_cast<size_t>(state.parameters_size()) != parameters.size() ||
      static_cast<size_t>(state.buffers_size()) != buffers.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "section \"run\": the checkpoint has ", state.parameters_size(), " parameters and ",
        state.buffers_size(), " buffers, this model ", parameters.size(), " and ", buffers.size()));
  }
  for (size_t k = 0; k < parameters.size(); ++k) {
    if (absl::Status s = CheckTensor("parameter", k, parameters[k]->name,
                                     parameters[k]->value.shape(), state.parameters(k));
        !s.ok()) {
      return s;
    }
  }
  for (size_t k = 0; k < buffers.size(); ++k) {
    if (absl::Status s = CheckTensor("buffer", k, buffers[k].first, buffers[k].second->shape(),
                                     state.buffers(k));
        !s.ok()) {
      return s;
    }
  }
  size_t offset = 0, momentum_offset = 0, window_offset = 0, buffer_offset = 0;
  for (size_t k = 0; k < parameters.size(); ++k) {
    Take(checkpoint.parameters, offset, parameters[k]->value.span());
    Take(checkpoint.momentum, momentum_offset, sgd_.momentum_buffers()[k].span());
    std::vector<double>& sum = window_.sums()[k];
    std::copy_n(checkpoint.gradient_window.begin() + static_cast<std::ptrdiff_t>(window_offset),
                sum.size(), sum.begin());
    window_offset += sum.size();
  }
  for (const auto& [name, tensor] : buffers)
    Take(checkpoint.buffers, buffer_offset, tensor->span());
  NumericPrecision& precision = model_.precision();
  precision.bits = static_cast<int>(state.precision_bits());
  precision.step = state.rounding_step();
  precision.saturations = state.saturations();
  precision.route_choices.clear();
  for (const internal::RouteChoiceRecord& r : state.route_choices()) {
    precision.route_choices.push_back(FromRecord(r));
  }
  sgd_.set_started(state.optimizer_started());
  policy_epoch_ = static_cast<int64_t>(state.policy_epoch());
  policy_iterations_ = static_cast<int64_t>(state.policy_iterations());
  policy_tally_ = Tally();
  policy_tally_.loss_sum = state.policy_loss_sum();
  policy_tally_.correct = state.policy_correct();
  policy_tally_.samples = state.policy_samples();
  rank_diversity_ = state.rank_gradient_diversity();
  return options_.offload != nullptr ? options_.offload->Upload(sgd_) : absl::OkStatus();
}

}  // namespace muppet
