#include "server/test_placement.h"

#include "absl/strings/str_cat.h"

namespace muppet::server {

absl::StatusOr<TestPlacement> PlaceTestJob(Coordinator& coordinator,
                                           const std::string& worker_name) {
  v1::RegisterWorkerRequest registration;
  registration.set_worker_name(worker_name);
  v1::Device& cpu = *registration.add_devices();
  cpu.set_kind(v1::DEVICE_KIND_CPU);
  cpu.set_index(0);
  absl::StatusOr<v1::RegisterWorkerResponse> worker = coordinator.RegisterWorker(registration);
  if (!worker.ok()) return worker.status();
  absl::StatusOr<uint64_t> stream = coordinator.OpenAssignmentStream(worker->worker_id());
  if (!stream.ok()) return stream.status();

  v1::SubmitJobRequest submission;
  v1::JobSpec& spec = *submission.mutable_spec();
  spec.mutable_model()->set_name("lenet5");
  spec.mutable_dataset()->set_name("fashion-mnist");
  spec.set_batch_size(32);
  spec.set_epochs(1);
  spec.mutable_optimizer()->set_learning_rate(0.05);
  spec.mutable_precision()->set_kind(v1::PrecisionPolicySpec::KIND_FP32);
  absl::StatusOr<v1::Job> job = coordinator.SubmitJob(submission, "");
  if (!job.ok()) return job.status();

  absl::StatusOr<std::vector<v1::AssignmentEvent>> events =
      coordinator.NextAssignments(worker->worker_id(), *stream, absl::Seconds(5));
  if (!events.ok()) return events.status();
  for (const v1::AssignmentEvent& e : *events) {
    if (e.has_assign() && e.assign().job_id() == job->id()) {
      return TestPlacement{.worker_id = worker->worker_id(),
                           .job_id = job->id(),
                           .rendezvous_prefix = e.assign().rendezvous_prefix()};
    }
  }
  return absl::InternalError(
      absl::StrCat("job ", job->id(), " was not assigned to ", worker->worker_id()));
}

}  // namespace muppet::server
