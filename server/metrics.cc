#include "server/metrics.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "proto/spec_validation.h"

namespace muppet::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// Policy epochs last from about a second (demos) to an hour (ImageNet epochs).
const prometheus::Histogram::BucketBoundaries kEpochBuckets = {0.5, 1,   2.5, 5,   10,   30,
                                                               60,  120, 300, 600, 1800, 3600};
// RPCs are sub-millisecond when healthy; streams are not timed.
const prometheus::Histogram::BucketBoundaries kRpcBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};

std::string StateLabel(v1::JobState state) {
  // "JOB_STATE_RUNNING" -> "running".
  return absl::AsciiStrToLower(absl::string_view(v1::JobState_Name(state)).substr(10));
}

}  // namespace

Metrics::Metrics(const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()),
      word_length_(BuildGauge()
                       .Name("muppet_job_word_length")
                       .Help("Word length in bits that a job trains at now; 32 for FP32.")
                       .Register(*registry_)),
      ranks_(BuildGauge()
                 .Name("muppet_job_ranks")
                 .Help("Ranks a job trains on: workers x devices per worker.")
                 .Register(*registry_)),
      switches_(BuildCounter()
                    .Name("muppet_precision_switches_total")
                    .Help("Precision climbs decided by the coordinator's policy.")
                    .Register(*registry_)),
      diversity_(BuildGauge()
                     .Name("muppet_gradient_diversity")
                     .Help("Inter-epoch gradient diversity ds(j) of the last closed window.")
                     .Register(*registry_)),
      diversity_ratio_(BuildGauge()
                           .Name("muppet_gradient_diversity_ratio")
                           .Help("p = max diversity since the last switch / ds(j); a climb "
                                 "counts a violation when it exceeds the threshold.")
                           .Register(*registry_)),
      rank_diversity_(BuildGauge()
                          .Name("muppet_rank_gradient_diversity")
                          .Help("Data parallel: sum over ranks of ||g_r||^2 / ||sum of g_r||^2 "
                                "at the last policy epoch end; 1/ranks when all ranks agree.")
                          .Register(*registry_)),
      route_passes_(BuildGauge()
                        .Name("muppet_fixed_point_route_passes")
                        .Help("Fixed-point layer passes (layer, pass, shape, width) of a job's "
                              "rank 0 on each route: integer kernels or FP32 on the grid.")
                        .Register(*registry_)),
      threshold_(BuildGauge()
                     .Name("muppet_switch_threshold")
                     .Help("Switch threshold T(j) = alpha + beta * exp(-lambda * j).")
                     .Register(*registry_)),
      violations_(BuildGauge()
                      .Name("muppet_policy_violations")
                      .Help("Threshold violations since the last precision switch.")
                      .Register(*registry_)),
      epoch_(BuildGauge()
                 .Name("muppet_job_epoch")
                 .Help("Policy epochs a job has completed.")
                 .Register(*registry_)),
      train_loss_(BuildGauge()
                      .Name("muppet_train_loss")
                      .Help("Mean training loss of a job's last policy epoch.")
                      .Register(*registry_)),
      test_accuracy_(BuildGauge()
                         .Name("muppet_test_accuracy_ratio")
                         .Help("Test accuracy of a job's last evaluation, from 0 to 1.")
                         .Register(*registry_)),
      samples_(BuildCounter()
                   .Name("muppet_train_samples_total")
                   .Help("Training images processed, all ranks together, by precision.")
                   .Register(*registry_)),
      epoch_duration_(BuildHistogram()
                          .Name("muppet_epoch_duration_seconds")
                          .Help("Wall-clock training time of policy epochs, by precision.")
                          .Register(*registry_)),
      saturations_(BuildCounter()
                       .Name("muppet_fixed_point_saturations_total")
                       .Help("Fixed-point codes and integer sums that saturated.")
                       .Register(*registry_)),
      allreduce_seconds_(BuildCounter()
                             .Name("muppet_allreduce_seconds_total")
                             .Help("Data parallel: time rank 0 spent in gradient allreduces, by "
                                   "precision.")
                             .Register(*registry_)),
      allreduce_exposed_seconds_(BuildCounter()
                                     .Name("muppet_allreduce_exposed_seconds_total")
                                     .Help("Data parallel: time the end of rank 0's backward "
                                           "waited for its gradient allreduces to finish.")
                                     .Register(*registry_)),
      allreduce_bytes_(BuildCounter()
                           .Name("muppet_allreduce_bytes_total")
                           .Help("Data parallel: bytes rank 0 sent into gradient allreduces, by "
                                 "precision.")
                           .Register(*registry_)),
      jobs_(BuildGauge().Name("muppet_jobs").Help("Jobs by state.").Register(*registry_)),
      workers_(BuildGauge().Name("muppet_workers").Help("Workers by state.").Register(*registry_)),
      rpc_duration_(BuildHistogram()
                        .Name("muppet_rpc_duration_seconds")
                        .Help("Time the coordinator took to answer unary RPCs.")
                        .Register(*registry_)),
      denials_(BuildCounter()
                   .Name("muppet_rpc_denials_total")
                   .Help("RPCs refused for want of a known token, a role that may call them or "
                         "ownership of the job, by method and reason.")
                   .Register(*registry_)),
      restarts_(BuildCounter()
                    .Name("muppet_job_restarts_total")
                    .Help("Jobs placed again after a lost worker or a failed rank.")
                    .Register(*registry_)
                    .Add({})),
      checkpoints_(BuildCounter()
                       .Name("muppet_checkpoints_total")
                       .Help("Checkpoints recorded, all jobs together.")
                       .Register(*registry_)
                       .Add({})),
      checkpoint_bytes_(BuildCounter()
                            .Name("muppet_checkpoint_bytes_total")
                            .Help("Bytes of the checkpoints recorded, all jobs together.")
                            .Register(*registry_)
                            .Add({})) {
  BuildGauge()
      .Name("muppet_build_info")
      .Help("Always 1; the muppet version that serves these metrics.")
      .Register(*registry_)
      .Add({{"version", version}})
      .Set(1);
  for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_CANCELLED; ++s) {
    jobs_.Add({{"state", StateLabel(static_cast<v1::JobState>(s))}}).Set(0);
  }
  SetWorkerCounts(0, 0);
}

void Metrics::ObserveRestart() { restarts_.Increment(); }

void Metrics::ObserveCheckpoint(uint64_t bytes) {
  checkpoints_.Increment();
  checkpoint_bytes_.Increment(static_cast<double>(bytes));
}

void Metrics::ObserveRpc(absl::string_view method, absl::StatusCode code, double seconds) {
  absl::MutexLock lock(&mu_);
  prometheus::Histogram*& h = rpc_series_[{std::string(method), code}];
  if (h == nullptr) {
    h = &rpc_duration_.Add(
        {{"method", std::string(method)}, {"code", absl::StatusCodeToString(code)}}, kRpcBuckets);
  }
  h->Observe(seconds);
}

void Metrics::ObserveDenial(absl::string_view method, absl::string_view reason) {
  // prometheus-cpp's Family::Add is thread-safe and returns the existing series.
  denials_.Add({{"method", std::string(method)}, {"reason", std::string(reason)}}).Increment();
}

void Metrics::SetJobCounts(const std::map<v1::JobState, int>& counts) {
  for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_CANCELLED; ++s) {
    const auto state = static_cast<v1::JobState>(s);
    const auto it = counts.find(state);
    jobs_.Add({{"state", StateLabel(state)}}).Set(it == counts.end() ? 0 : it->second);
  }
}

void Metrics::SetWorkerCounts(int active, int lost) {
  workers_.Add({{"state", "active"}}).Set(active);
  workers_.Add({{"state", "lost"}}).Set(lost);
}

Metrics::JobSeries& Metrics::Series(const std::string& job_id) {
  JobSeries& series = jobs_series_[job_id];
  if (series.saturations == nullptr) series.saturations = &saturations_.Add({{"job_id", job_id}});
  return series;
}

void Metrics::SetGauge(JobSeries& series, prometheus::Family<prometheus::Gauge>& family,
                       const std::string& job_id, double value) {
  prometheus::Gauge*& g = series.gauges[family.GetName()];
  if (g == nullptr) g = &family.Add({{"job_id", job_id}});
  g->Set(value);
}

void Metrics::SetJob(const v1::Job& job) {
  absl::MutexLock lock(&mu_);
  JobSeries& series = Series(job.id());
  SetGauge(series, word_length_, job.id(), job.progress().precision_bits());
  SetGauge(series, ranks_, job.id(), RankCount(job.spec().resources()));
}

void Metrics::ObserveAllreduce(JobSeries& series, const std::string& job_id, uint32_t bits,
                               const v1::EpochMetrics& m) {
  // One rank sends nothing: no series, rather than zeros that look like free communication.
  if (m.allreduce_bytes() == 0 && series.allreduce.count(bits) == 0) return;
  std::array<prometheus::Counter*, 3>& c = series.allreduce[bits];
  if (c[0] == nullptr) {
    const prometheus::Labels labels = {{"job_id", job_id}, {"precision_bits", absl::StrCat(bits)}};
    c = {&allreduce_seconds_.Add(labels), &allreduce_exposed_seconds_.Add(labels),
         &allreduce_bytes_.Add(labels)};
  }
  c[0]->Increment(m.allreduce_seconds());
  c[1]->Increment(m.allreduce_exposed_seconds());
  c[2]->Increment(static_cast<double>(m.allreduce_bytes()));
}

void Metrics::ObserveEpoch(const std::string& job_id, const v1::EpochReport& report) {
  absl::MutexLock lock(&mu_);
  JobSeries& series = Series(job_id);
  const v1::EpochMetrics& m = report.metrics();
  SetGauge(series, epoch_, job_id, report.epoch() + 1);
  if (m.has_train_loss()) SetGauge(series, train_loss_, job_id, m.train_loss());
  if (m.has_test_accuracy()) SetGauge(series, test_accuracy_, job_id, m.test_accuracy());
  if (m.has_rank_gradient_diversity()) {
    SetGauge(series, rank_diversity_, job_id, m.rank_gradient_diversity());
  }
  for (const auto& [route, count] :
       {std::pair{"integer", m.integer_route_passes()}, {"grid", m.grid_route_passes()}}) {
    prometheus::Gauge*& g = series.route_passes[route];
    if (g == nullptr) g = &route_passes_.Add({{"job_id", job_id}, {"route", route}});
    g->Set(count);
  }
  const v1::PolicyDiagnostics& d = report.diagnostics();
  if (d.has_diversity()) SetGauge(series, diversity_, job_id, d.diversity());
  if (d.has_ratio()) SetGauge(series, diversity_ratio_, job_id, d.ratio());
  if (d.has_threshold()) SetGauge(series, threshold_, job_id, d.threshold());
  if (d.has_violations()) SetGauge(series, violations_, job_id, d.violations());
  const uint32_t bits = report.precision_bits();
  prometheus::Counter*& samples = series.samples[bits];
  if (samples == nullptr) {
    samples = &samples_.Add({{"job_id", job_id}, {"precision_bits", absl::StrCat(bits)}});
  }
  samples->Increment(static_cast<double>(m.samples()));
  ObserveAllreduce(series, job_id, bits, m);
  series.saturations->Increment(static_cast<double>(m.fixed_point_saturations()));
  prometheus::Histogram*& duration = duration_series_[bits];
  if (duration == nullptr) {
    duration = &epoch_duration_.Add({{"precision_bits", absl::StrCat(bits)}}, kEpochBuckets);
  }
  duration->Observe(m.seconds());
}

void Metrics::ObserveSwitch(const std::string& job_id, uint32_t from_bits, uint32_t to_bits) {
  absl::MutexLock lock(&mu_);
  prometheus::Counter*& c = Series(job_id).switches[{from_bits, to_bits}];
  if (c == nullptr) {
    c = &switches_.Add({{"job_id", job_id},
                        {"from_bits", absl::StrCat(from_bits)},
                        {"to_bits", absl::StrCat(to_bits)}});
  }
  c->Increment();
}

void Metrics::RemoveJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  const auto it = jobs_series_.find(job_id);
  if (it == jobs_series_.end()) return;
  JobSeries& s = it->second;
  for (auto* family : {&word_length_, &ranks_, &diversity_, &diversity_ratio_, &rank_diversity_,
                       &threshold_, &violations_, &epoch_, &train_loss_, &test_accuracy_}) {
    const auto g = s.gauges.find(family->GetName());
    if (g != s.gauges.end()) family->Remove(g->second);
  }
  for (const auto& [bits, c] : s.switches) switches_.Remove(c);
  for (const auto& [route, g] : s.route_passes) route_passes_.Remove(g);
  for (const auto& [bits, c] : s.samples) samples_.Remove(c);
  for (const auto& [bits, c] : s.allreduce) {
    allreduce_seconds_.Remove(c[0]);
    allreduce_exposed_seconds_.Remove(c[1]);
    allreduce_bytes_.Remove(c[2]);
  }
  saturations_.Remove(s.saturations);
  jobs_series_.erase(it);
}

}  // namespace muppet::server
