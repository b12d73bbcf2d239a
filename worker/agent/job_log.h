// Logs a training run of a job as it goes (data ready, each epoch's end with the fixed-point
// routes chosen in it, each precision switch),
// and passes each epoch's test accuracy to the remote controller for its next report. The agent
// uses it for the jobs it trains itself, muppet-rank for each rank of a data-parallel job (whose
// lines carry the rank, so that ranks can be compared).
#ifndef MUPPET_WORKER_AGENT_JOB_LOG_H_
#define MUPPET_WORKER_AGENT_JOB_LOG_H_

#include <string>

#include "base/log.h"
#include "worker/agent/remote_controller.h"
#include "worker/train/run.h"

namespace muppet {

class JobLog : public RunObserver {
 public:
  // `log` and `controller` must outlive the observer. `rank`: the job's rank this process
  // trains (0 for a job of one rank).
  JobLog(Logger* log, std::string job_id, RemotePrecisionController& controller, int rank = 0);

  void OnStart(const RunStart& start) override;
  void OnEpochEnd(const EpochResult& r) override;
  void OnPrecisionSwitch(const PrecisionSwitchEvent& event) override;

 private:
  // One line per fixed-point route chosen during the epoch.
  void LogRoutes(const EpochResult& r);

  Logger* log_;
  std::string job_id_;
  std::string rank_;
  RemotePrecisionController& controller_;
};

}  // namespace muppet

#endif  // MUPPET_WORKER_AGENT_JOB_LOG_H_
