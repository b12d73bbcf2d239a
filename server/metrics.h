// The coordinator's Prometheus metrics (served by a prometheus-cpp pull exposer). Names follow
// the Prometheus conventions: muppet_ prefix, base units, _total on counters, ratios in [0, 1].
// Series labelled by job exist while the job is queued or running and are removed when it ends,
// so a long-lived coordinator's cardinality stays bounded (Prometheus keeps their history).
#ifndef MUPPET_SERVER_METRICS_H_
#define MUPPET_SERVER_METRICS_H_

#include <array>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "muppet/v1/job.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace muppet::server {

class Metrics {
 public:
  explicit Metrics(const std::string& version);

  // What the exposer serves.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // One RPC handled by the coordinator.
  void ObserveRpc(absl::string_view method, absl::StatusCode code, double seconds);

  // One RPC refused by authentication or authorisation, by why (auth.h's DenialName).
  void ObserveDenial(absl::string_view method, absl::string_view reason);

  // How many jobs are in each state (indexed by v1::JobState) and workers in each state.
  void SetJobCounts(const std::map<v1::JobState, int>& counts);
  void SetWorkerCounts(int active, int lost);

  // A job that is queued or running, as now (on submission, on restart, on scheduling and after
  // every decision): its word length and its ranks.
  void SetJob(const v1::Job& job);

  // A policy epoch reported by a job's rank 0.
  void ObserveEpoch(const std::string& job_id, const v1::EpochReport& report);

  // A precision climb of a job.
  void ObserveSwitch(const std::string& job_id, uint32_t from_bits, uint32_t to_bits);

  // A job placed again after a lost worker or a failed rank.
  void ObserveRestart();

  // A checkpoint recorded, of `bytes`.
  void ObserveCheckpoint(uint64_t bytes);

  // The job ended: its series go.
  void RemoveJob(const std::string& job_id);

 private:
  // The series of one job, so that they can be removed together.
  struct JobSeries {
    std::map<std::string, prometheus::Gauge*> gauges;  // By metric name.
    std::map<std::pair<uint32_t, uint32_t>, prometheus::Counter*> switches;
    std::map<uint32_t, prometheus::Counter*> samples;  // By precision.
    // Rank 0's allreduce seconds, exposed seconds and bytes, by precision.
    std::map<uint32_t, std::array<prometheus::Counter*, 3>> allreduce;
    prometheus::Counter* saturations = nullptr;
    std::map<std::string, prometheus::Gauge*> route_passes;  // By route.
  };
  JobSeries& Series(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ObserveAllreduce(JobSeries& series, const std::string& job_id, uint32_t bits,
                        const v1::EpochMetrics& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetGauge(JobSeries& series, prometheus::Family<prometheus::Gauge>& family,
                const std::string& job_id, double value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& word_length_;
  prometheus::Family<prometheus::Gauge>& ranks_;
  prometheus::Family<prometheus::Counter>& switches_;
  prometheus::Family<prometheus::Gauge>& diversity_;
  prometheus::Family<prometheus::Gauge>& diversity_ratio_;
  prometheus::Family<prometheus::Gauge>& rank_diversity_;
  prometheus::Family<prometheus::Gauge>& route_passes_;
  prometheus::Family<prometheus::Gauge>& threshold_;
  prometheus::Family<prometheus::Gauge>& violations_;
  prometheus::Family<prometheus::Gauge>& epoch_;
  prometheus::Family<prometheus::Gauge>& train_loss_;
  prometheus::Family<prometheus::Gauge>& test_accuracy_;
  prometheus::Family<prometheus::Counter>& samples_;
  prometheus::Family<prometheus::Histogram>& epoch_duration_;
  prometheus::Family<prometheus::Counter>& saturations_;
  prometheus::Family<prometheus::Counter>& allreduce_seconds_;
  prometheus::Family<prometheus::Counter>& allreduce_exposed_seconds_;
  prometheus::Family<prometheus::Counter>& allreduce_bytes_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Family<prometheus::Counter>& denials_;
  prometheus::Counter& restarts_;
  prometheus::Counter& checkpoints_;
  prometheus::Counter& checkpoint_bytes_;

  absl::Mutex mu_;
  std::map<std::string, JobSeries> jobs_series_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, absl::StatusCode>, prometheus::Histogram*> rpc_series_
      ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, prometheus::Histogram*> duration_series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muppet::server

#endif  // MUPPET_SERVER_METRICS_H_
