#include "worker/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace muppet {

LrSchedule::LrSchedule(double base_lr, const v1::LrSchedule& spec, int epochs)
    : base_lr_(base_lr), spec_(spec), epochs_(epochs) {}

double LrSchedule::At(int epoch, std::optional<int> first_fp32_epoch) const {
  switch (spec_.kind_case()) {
    case v1::LrSchedule::kStep:
      return base_lr_ * std::pow(spec_.step().gamma(), epoch / spec_.step().step_epochs());
    case v1::LrSchedule::kMultiStep: {
      const auto& m = spec_.multi_step().milestones();
      const auto passed = std::count_if(m.begin(), m.end(), [&](uint32_t e) {
        return static_cast<int>(e) <= epoch;
      });
      return base_lr_ * std::pow(spec_.multi_step().gamma(), passed);
    }
    case v1::LrSchedule::kCosine: {
      const double min_lr = spec_.cosine().min_learning_rate();
      return min_lr + (base_lr_ - min_lr) * (1 + std::cos(M_PI * epoch / epochs_)) / 2;
    }
    case v1::LrSchedule::kPrecisionAware: {
      if (!first_fp32_epoch || epoch < *first_fp32_epoch) return base_lr_;
      const auto& p = spec_.precision_aware();
      const int decays = (epoch - *first_fp32_epoch) / static_cast<int>(p.step_epochs());
      return std::max(base_lr_ * std::pow(p.gamma(), decays), base_lr_ * p.floor_ratio());
    }
    case v1::LrSchedule::kConstant:
    case v1::LrSchedule::KIND_NOT_SET:
      break;
  }
  return base_lr_;
}

}  // namespace muppet
