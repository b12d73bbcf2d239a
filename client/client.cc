#include "client/client.h"

#include "absl/strings/str_cat.h"
#include "base/rpc.h"

namespace muppet::client {

Client::Client(const ClientOptions& options)
    : options_(options),
      stub_(v1::JobService::NewStub(CoordinatorChannel(options.server, options.tls))) {}

std::unique_ptr<grpc::ClientContext> Client::Context(bool deadline) const {
  return CallContext(options_.token,
                     deadline ? std::optional<absl::Duration>(options_.timeout) : std::nullopt);
}

absl::Status Client::Explain(const grpc::Status& status) const {
  const absl::Status s = FromGrpc(status);
  if (s.code() == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach muppetd at ", options_.server, ": ", s.message()));
  }
  if (s.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::DeadlineExceededError(absl::StrCat("muppetd at ", options_.server,
                                                    " did not answer within ",
                                                    absl::FormatDuration(options_.timeout)));
  }
  return s;
}

absl::StatusOr<v1::Job> Client::SubmitJob(const v1::JobSpec& spec, const std::string& request_id) {
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  request.set_request_id(request_id);
  v1::Job job;
  if (absl::Status s = Explain(stub_->SubmitJob(Context(true).get(), request, &job)); !s.ok()) {
    return s;
  }
  return job;
}

absl::StatusOr<v1::Job> Client::GetJob(const std::string& job_id) {
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  if (absl::Status s = Explain(stub_->GetJob(Context(true).get(), request, &job)); !s.ok()) {
    return s;
  }
  return job;
}

absl::StatusOr<std::vector<v1::Job>> Client::ListJobs(const std::vector<v1::JobState>& states,
                                                      size_t limit, const std::string& owner) {
  std::vector<v1::Job> jobs;
  v1::ListJobsRequest request;
  request.set_owner(owner);
  for (v1::JobState s : states) request.add_states(s);
  do {
    v1::ListJobsResponse response;
    if (absl::Status s = Explain(stub_->ListJobs(Context(true).get(), request, &response));
        !s.ok()) {
      return s;
    }
    for (v1::Job& job : *response.mutable_jobs()) {
      if (limit != 0 && jobs.size() == limit) return jobs;
      jobs.push_back(std::move(job));
    }
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return jobs;
}

absl::StatusOr<v1::Job> Client::CancelJob(const std::string& job_id, const std::string& reason) {
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  request.set_reason(reason);
  v1::Job job;
  if (absl::Status s = Explain(stub_->CancelJob(Context(true).get(), request, &job)); !s.ok()) {
    return s;
  }
  return job;
}

absl::StatusOr<std::vector<v1::WorkerInfo>> Client::ListWorkers() {
  std::vector<v1::WorkerInfo> workers;
  v1::ListWorkersRequest request;
  do {
    v1::ListWorkersResponse response;
    if (absl::Status s = Explain(stub_->ListWorkers(Context(true).get(), request, &response));
        !s.ok()) {
      return s;
    }
    for (v1::WorkerInfo& w : *response.mutable_workers()) workers.push_back(std::move(w));
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return workers;
}

absl::Status Client::WatchJob(const std::string& job_id, uint64_t from_sequence,
                              const std::function<bool(const v1::JobEvent&)>& on_event) {
  uint64_t next = from_sequence;
  Backoff backoff(absl::Milliseconds(250), absl::Seconds(5));
  absl::Time give_up = absl::Now() + options_.reconnect_window;
  while (true) {
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_from_sequence(next);
    std::unique_ptr<grpc::ClientContext> ctx = Context(false);
    std::unique_ptr<grpc::ClientReader<v1::JobEvent>> reader = stub_->WatchJob(ctx.get(), request);
    v1::JobEvent event;
    while (reader->Read(&event)) {
      next = event.sequence() + 1;
      // Events flowed: the connection is healthy again.
      backoff.Reset();
      give_up = absl::Now() + options_.reconnect_window;
      if (!on_event(event)) {
        ctx->TryCancel();
        reader->Finish().IgnoreError();
        return absl::OkStatus();
      }
    }
    const absl::Status s = Explain(reader->Finish());
    if (s.code() != absl::StatusCode::kUnavailable || absl::Now() + backoff.current() > give_up) {
      return s;
    }
    absl::SleepFor(backoff.Next());
  }
}

}  // namespace muppet::client
