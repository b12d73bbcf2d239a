// What muppet-train shows while it trains: on a terminal, a live progress bar with loss,
// images/s and ETA; otherwise one line per epoch (for logs and pipes).
#ifndef MUPPET_WORKER_TRAIN_PROGRESS_H_
#define MUPPET_WORKER_TRAIN_PROGRESS_H_

#include <cstdio>
#include <string>

#include "worker/train/trainer.h"

namespace muppet {

// "fp32", or "fixed8" for 8-bit dynamic fixed point.
std::string PrecisionLabel(int bits);

class ProgressDisplay : public TrainingObserver {
 public:
  // Writes to `out`; `live` draws the bar (use when `out` is a terminal).
  ProgressDisplay(FILE* out, bool live, int epochs);

  void OnIteration(int epoch, int64_t done, int64_t total, double mean_loss,
                   double images_per_second, double elapsed_seconds) override;
  // Announces a climb of the precision ladder on its own line.
  void OnPrecisionSwitch(const PrecisionSwitchEvent& event) override;
  // Prints the epoch's summary line (replacing the bar on a terminal).
  void OnEpochEnd(const EpochResult& result);
  // The precision shown on the bar until the next switch.
  void SetPrecision(int bits) { bits_ = bits; }

 private:
  FILE* out_;
  bool live_;
  int epochs_;
  int bits_ = kFp32Bits;
  double last_draw_ = 0;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_TRAIN_PROGRESS_H_
