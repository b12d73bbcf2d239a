#include "worker/train/progress.h"

#include <string>

#include "base/clock.h"

namespace muppet {
namespace {

std::string Duration(double seconds) {
  const int s = static_cast<int>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%d:%02d", s / 60, s % 60);
  return buf;
}

}  // namespace

std::string PrecisionLabel(int bits) {
  return bits >= kFp32Bits ? "fp32" : "fixed" + std::to_string(bits);
}

ProgressDisplay::ProgressDisplay(FILE* out, bool live, int epochs)
    : out_(out), live_(live), epochs_(epochs) {}

void ProgressDisplay::OnIteration(int epoch, int64_t done, int64_t total, double mean_loss,
                                  double images_per_second, double elapsed_seconds) {
  if (!live_) return;
  const double now = SteadySeconds();
  if (done != total && now - last_draw_ < 0.1) return;  // At most 10 redraws a second.
  last_draw_ = now;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * done / total);
  const double eta = elapsed_seconds / done * (total - done);  // Of this epoch.
  std::fprintf(out_, "\r\033[Kepoch %d/%d %s [%s%s] %3d%%  loss %.4f  %.0f img/s  ETA %s",
               epoch + 1, epochs_, PrecisionLabel(bits_).c_str(), std::string(filled, '#').c_str(),
               std::string(kWidth - filled, '.').c_str(), static_cast<int>(100 * done / total),
               mean_loss, images_per_second, Duration(eta).c_str());
  std::fflush(out_);
}

void ProgressDisplay::OnPrecisionSwitch(const PrecisionSwitchEvent& e) {
  std::string why;
  const scheduler::Diagnostics& d = e.diagnostics;
  if (d.ratio && d.threshold && d.violations) {
    char buf[160];
    std::snprintf(buf, sizeof(buf),
                  " (gradient diversity ratio %.3f vs threshold %.3f, %d violations)", *d.ratio,
                  *d.threshold, *d.violations);
    why = buf;
  }
  std::fprintf(out_, "%sprecision switch: %s -> %s after policy epoch %lld%s\n",
               live_ ? "\r\033[K" : "", PrecisionLabel(e.from_bits).c_str(),
               PrecisionLabel(e.to_bits).c_str(), static_cast<long long>(e.policy_epoch),
               why.c_str());
  std::fflush(out_);
  bits_ = e.to_bits;
}

void ProgressDisplay::OnEpochEnd(const EpochResult& r) {
  std::string policy;
  if (r.diagnostics.diversity) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "  diversity %.4g ratio %.3f/%.3f", *r.diagnostics.diversity,
                  *r.diagnostics.ratio, *r.diagnostics.threshold);
    policy = buf;
  }
  std::fprintf(out_,
               "%sepoch %d/%d  %s  loss %.4f  train-acc %.4f  test-acc %.4f  %.1f s  "
               "%.0f img/s  lr %g%s\n",
               live_ ? "\r\033[K" : "", r.epoch + 1, epochs_,
               PrecisionLabel(r.precision_bits).c_str(), r.train_loss, r.train_accuracy,
               r.test_accuracy, r.seconds, r.images_per_second, r.learning_rate, policy.c_str());
  std::fflush(out_);
}

}  // namespace muppet
