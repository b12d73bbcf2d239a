// The command-line flags that describe a training job (--model, --epochs, --lr, --policy, ...),
// defined once for every binary that takes them: muppet-train and `muppetctl submit`.
#ifndef MUPPET_BASE_TRAIN_FLAGS_H_
#define MUPPET_BASE_TRAIN_FLAGS_H_

#include "base/train_config.h"

namespace muppet {

// The training flags as parsed from the command line (absl::ParseCommandLine must have run).
TrainFlags TrainFlagsFromCommandLine();

}  // namespace muppet

#endif  // MUPPET_BASE_TRAIN_FLAGS_H_
