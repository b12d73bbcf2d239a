// How muppetctl shows jobs and workers: aligned tables, a job's details, and the live view of
// `watch` (a progress bar on a terminal, one line per event otherwise).
#ifndef MUPPET_CLIENT_RENDER_H_
#define MUPPET_CLIENT_RENDER_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "muppet/v1/job.pb.h"

namespace muppet::client {

// "fp32" for 32 bits, else "fixed<bits>".
std::string PrecisionName(uint32_t bits);

// "running", "succeeded", ...
std::string StateName(v1::JobState state);

// One row per job: ID, NAME, STATE, MODEL, PRECISION, EPOCH, LOSS, ACCURACY, AGE.
std::string JobsTable(const std::vector<v1::Job>& jobs, absl::Time now);

// One row per worker: ID, NAME, STATE, DEVICES, FREE, JOBS, CPU, VERSION.
std::string WorkersTable(const std::vector<v1::WorkerInfo>& workers);

// A job as "key: value" lines.
std::string JobDetails(const v1::Job& job);

// "epoch 6 (policy epoch 6, fixed12) /ck/job-…/checkpoint-000006.muppet, 4.4 MB, crc32c 1a2b3c4d".
std::string CheckpointText(const v1::CheckpointInfo& c);

// "  2: on wrk-… from <time> (current), resumed from epoch 6 (<path>)", with why it ended.
std::string AttemptText(const v1::JobAttempt& a);

// The summary `watch` prints when a job ends: state, accuracy, time and switch epochs.
std::string JobSummary(const v1::Job& job);

class WatchDisplay {
 public:
  // `live` redraws a progress bar in place (use on a terminal).
  WatchDisplay(FILE* out, bool live, const v1::Job& job);

  void OnEvent(const v1::JobEvent& event);

 private:
  void Draw();
  void Line(const std::string& text);

  FILE* out_;
  bool live_;
  uint32_t epochs_;
  uint32_t bits_;
  uint32_t train_epoch_ = 0;
  uint32_t policy_epoch_ = 0;
  double loss_ = -1;
  double accuracy_ = -1;
  bool bar_shown_ = false;
};

}  // namespace muppet::client

#endif  // MUPPET_CLIENT_RENDER_H_
