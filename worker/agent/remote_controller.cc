#include "worker/agent/remote_controller.h"

#include "absl/strings/str_cat.h"

namespace muppet {

RemotePrecisionController::RemotePrecisionController(
    v1::WorkerService::Stub& stub, const RetryPolicy& retry, std::string worker_id,
    std::string job_id, uint32_t attempt, const v1::PrecisionPolicySpec& spec, int start_bits,
    const std::atomic<bool>& cancel)
    : stub_(stub),
      retry_(retry),
      worker_id_(std::move(worker_id)),
      job_id_(std::move(job_id)),
      attempt_(attempt),
      muppet_(spec.kind() == v1::PrecisionPolicySpec::KIND_MUPPET),
      bits_(start_bits),
      cancel_(cancel) {}

absl::StatusOr<int> RemotePrecisionController::AdoptLadder(const LadderProbe& probe) {
  v1::AdoptLadderRequest request;
  request.set_worker_id(worker_id_);
  request.set_job_id(job_id_);
  request.set_attempt(attempt_);
  *request.mutable_choice() = ToProto(probe);
  v1::AdoptLadderResponse response;
  const absl::Status s = CallWithRetry(retry_, &cancel_, [&] {
    return FromGrpc(stub_.AdoptLadder(retry_.Context().get(), request, &response));
  });
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat("adopting the ladder: ", s.message()));
  bits_ = static_cast<int>(response.start_precision_bits());
  return bits_;
}

absl::Status RemotePrecisionController::OnCheckpoint(const CheckpointInfo& info) {
  v1::ReportCheckpointRequest request;
  request.set_worker_id(worker_id_);
  request.set_job_id(job_id_);
  request.set_attempt(attempt_);
  v1::CheckpointInfo& c = *request.mutable_checkpoint();
  c.set_epoch(info.next_epoch);
  c.set_policy_epoch(info.policy_epoch);
  c.set_precision_bits(info.precision_bits);
  c.set_path(info.path);
  c.set_size_bytes(static_cast<uint64_t>(info.bytes));
  c.set_crc32c(info.crc32c);
  v1::ReportCheckpointResponse response;
  const absl::Status s = CallWithRetry(retry_, &cancel_, [&] {
    return FromGrpc(stub_.ReportCheckpoint(retry_.Context().get(), request, &response));
  });
  if (!s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("recording checkpoint ", info.path, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> RemotePrecisionController::BeginAttempt(
    std::optional<uint32_t> resume_epoch, const std::vector<std::string>& skipped) {
  v1::BeginAttemptRequest request;
  request.set_worker_id(worker_id_);
  request.set_job_id(job_id_);
  request.set_attempt(attempt_);
  if (resume_epoch) request.set_resume_epoch(*resume_epoch);
  for (const std::string& s : skipped) request.add_skipped(s);
  v1::BeginAttemptResponse response;
  const absl::Status s = CallWithRetry(retry_, &cancel_, [&] {
    return FromGrpc(stub_.BeginAttempt(retry_.Context().get(), request, &response));
  });
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("beginning attempt ", attempt_, ": ", s.message()));
  }
  bits_ = static_cast<int>(response.start_precision_bits());
  return bits_;
}

bool RemotePrecisionController::NeedsGradients() const { return muppet_ && bits_ != kFp32Bits; }

absl::StatusOr<scheduler::Decision> RemotePrecisionController::EndPolicyEpoch(
    const PolicyEpochReport& report) {
  v1::ReportEpochRequest request;
  request.set_worker_id(worker_id_);
  request.set_job_id(job_id_);
  request.set_attempt(attempt_);
  request.set_epoch(static_cast<uint32_t>(report.epoch));
  request.set_precision_bits(static_cast<uint32_t>(report.precision_bits));
  const EpochResult& m = report.metrics;
  v1::EpochMetrics& metrics = *request.mutable_metrics();
  metrics.set_train_loss(m.train_loss);
  metrics.set_train_accuracy(m.train_accuracy);
  if (m.test_accuracy >= 0) {
    metrics.set_test_accuracy(m.test_accuracy);
  } else if (pending_test_accuracy_ >= 0) {
    metrics.set_test_accuracy(pending_test_accuracy_);
  }
  pending_test_accuracy_ = -1;
  metrics.set_seconds(m.seconds);
  metrics.set_images_per_second(m.images_per_second);
  metrics.set_samples(static_cast<uint64_t>(m.samples));
  metrics.set_learning_rate(m.learning_rate);
  metrics.set_fixed_point_saturations(static_cast<uint64_t>(m.saturations));
  metrics.set_train_epoch(static_cast<uint32_t>(m.epoch));
  metrics.set_integer_route_passes(static_cast<uint32_t>(m.integer_route_passes));
  metrics.set_grid_route_passes(static_cast<uint32_t>(m.grid_route_passes));
  metrics.set_allreduce_seconds(m.communication_seconds);
  metrics.set_allreduce_exposed_seconds(m.communication_exposed_seconds);
  metrics.set_allreduce_bytes(static_cast<uint64_t>(m.communication_bytes));
  if (report.rank_gradient_diversity > 0) {
    metrics.set_rank_gradient_diversity(report.rank_gradient_diversity);
  }
  for (const scheduler::TensorGradient& g : report.gradients) {
    v1::TensorGradientStatistics& out = *request.add_gradients();
    out.set_name(g.name);
    out.set_elements(static_cast<uint64_t>(g.elements));
    out.set_squared_norm(g.squared_norm);
    out.set_window_sum_squared_norm(g.window_sum_squared_norm);
  }
  v1::ReportEpochResponse response;
  const absl::Status s = CallWithRetry(retry_, &cancel_, [&] {
    return FromGrpc(stub_.ReportEpoch(retry_.Context().get(), request, &response));
  });
  if (!s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("reporting policy epoch ", report.epoch, ": ", s.message()));
  }
  if (response.stop()) return absl::CancelledError("the coordinator stopped the job");
  bits_ = static_cast<int>(response.next_precision_bits());
  scheduler::Decision decision{.next_precision_bits = bits_,
                               .switched = response.switched(),
                               .window_closed = response.window_closed()};
  const v1::PolicyDiagnostics& d = response.diagnostics();
  if (d.has_diversity()) decision.diagnostics.diversity = d.diversity();
  if (d.has_ratio()) decision.diagnostics.ratio = d.ratio();
  if (d.has_threshold()) decision.diagnostics.threshold = d.threshold();
  if (d.has_violations()) decision.diagnostics.violations = static_cast<int>(d.violations());
  decision.diagnostics.skipped_tensors = static_cast<int>(d.skipped_tensors());
  return decision;
}

}  // namespace muppet
