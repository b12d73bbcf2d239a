// Learning-rate schedules of muppet.v1.LrSchedule, as pure functions of the epoch.
#ifndef MUPPET_WORKER_OPTIM_LR_SCHEDULE_H_
#define MUPPET_WORKER_OPTIM_LR_SCHEDULE_H_

#include <optional>

#include "muppet/v1/spec.pb.h"

namespace muppet {

class LrSchedule {
 public:
  // `spec` must be valid (ValidateJobSpec) with defaults applied; `epochs` is the run length.
  LrSchedule(double base_lr, const v1::LrSchedule& spec, int epochs);

  // The learning rate of `epoch` (from 0). `first_fp32_epoch` is the first epoch trained in
  // FP32, if one has been reached; only the precision-aware schedule uses it.
  double At(int epoch, std::optional<int> first_fp32_epoch = std::nullopt) const;

 private:
  double base_lr_;
  v1::LrSchedule spec_;
  int epochs_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_OPTIM_LR_SCHEDULE_H_
