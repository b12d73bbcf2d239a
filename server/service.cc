#include "server/service.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace muppet::server {
namespace {

// How long a stream waits before it looks again at whether its client went away.
constexpr absl::Duration kStreamPoll = absl::Milliseconds(500);

absl::Status Authorize(const ServiceContext& c, const grpc::ServerContext& ctx) {
  if (c.token.empty()) return absl::OkStatus();
  const auto& metadata = ctx.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError("missing token: send \"authorization: Bearer <token>\"");
  }
  if (absl::string_view(it->second.data(), it->second.size()) !=
      absl::StrCat("Bearer ", c.token)) {
    return absl::UnauthenticatedError("wrong token");
  }
  return absl::OkStatus();
}

// Runs a unary handler: authorises, times it, converts its status.
template <typename Body>
grpc::Status Unary(const ServiceContext& c, grpc::ServerContext* ctx, absl::string_view method,
                   Body&& body) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = Authorize(c, *ctx);
  if (s.ok()) s = body();
  c.metrics->ObserveRpc(
      method, s.code(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return ToGrpc(s);
}

// Copies a StatusOr's value into a response, or returns its error.
template <typename T>
absl::Status Fill(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return result.status();
  *response = *std::move(result);
  return absl::OkStatus();
}

}  // namespace

// ---- JobService ----

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext* ctx,
                                       const v1::SubmitJobRequest* request, v1::Job* response) {
  return Unary(c_, ctx, "SubmitJob",
               [&] { return Fill(c_.coordinator->SubmitJob(*request), response); });
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                                    v1::Job* response) {
  return Unary(c_, ctx, "GetJob",
               [&] { return Fill(c_.coordinator->GetJob(request->job_id()), response); });
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* ctx,
                                      const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  return Unary(c_, ctx, "ListJobs",
               [&] { return Fill(c_.coordinator->ListJobs(*request), response); });
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* ctx,
                                       const v1::CancelJobRequest* request, v1::Job* response) {
  return Unary(c_, ctx, "CancelJob",
               [&] { return Fill(c_.coordinator->CancelJob(*request), response); });
}

grpc::Status JobServiceImpl::ListWorkers(grpc::ServerContext* ctx,
                                         const v1::ListWorkersRequest* request,
                                         v1::ListWorkersResponse* response) {
  return Unary(c_, ctx, "ListWorkers", [&] {
    *response = c_.coordinator->ListWorkers();
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* ctx,
                                      const v1::WatchJobRequest* request,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  if (absl::Status s = Authorize(c_, *ctx); !s.ok()) return ToGrpc(s);
  uint64_t next = request->from_sequence();
  while (!ctx->IsCancelled()) {
    absl::StatusOr<EventBatch> batch =
        c_.coordinator->WaitForEvents(request->job_id(), next, kStreamPoll);
    if (!batch.ok()) return ToGrpc(batch.status());
    for (const v1::JobEvent& event : batch->events) {
      if (!writer->Write(event)) return grpc::Status(grpc::StatusCode::CANCELLED, "client left");
      next = event.sequence() + 1;
    }
    if (batch->final) return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "client left");
}

// ---- WorkerService ----

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext* ctx,
                                               const v1::RegisterWorkerRequest* request,
                                               v1::RegisterWorkerResponse* response) {
  return Unary(c_, ctx, "RegisterWorker",
               [&] { return Fill(c_.coordinator->RegisterWorker(*request), response); });
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* ctx,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  return Unary(c_, ctx, "Heartbeat",
               [&] { return Fill(c_.coordinator->Heartbeat(*request), response); });
}

grpc::Status WorkerServiceImpl::ReportEpoch(grpc::ServerContext* ctx,
                                            const v1::ReportEpochRequest* request,
                                            v1::ReportEpochResponse* response) {
  return Unary(c_, ctx, "ReportEpoch",
               [&] { return Fill(c_.coordinator->ReportEpoch(*request), response); });
}

grpc::Status WorkerServiceImpl::AdoptLadder(grpc::ServerContext* ctx,
                                            const v1::AdoptLadderRequest* request,
                                            v1::AdoptLadderResponse* response) {
  return Unary(c_, ctx, "AdoptLadder",
               [&] { return Fill(c_.coordinator->AdoptLadder(*request), response); });
}

grpc::Status WorkerServiceImpl::ReportCheckpoint(grpc::ServerContext* ctx,
                                                 const v1::ReportCheckpointRequest* request,
                                                 v1::ReportCheckpointResponse* response) {
  return Unary(c_, ctx, "ReportCheckpoint",
               [&] { return c_.coordinator->ReportCheckpoint(*request); });
}

grpc::Status WorkerServiceImpl::BeginAttempt(grpc::ServerContext* ctx,
                                             const v1::BeginAttemptRequest* request,
                                             v1::BeginAttemptResponse* response) {
  return Unary(c_, ctx, "BeginAttempt",
               [&] { return Fill(c_.coordinator->BeginAttempt(*request), response); });
}

grpc::Status WorkerServiceImpl::ReportResult(grpc::ServerContext* ctx,
                                             const v1::ReportResultRequest* request,
                                             v1::ReportResultResponse* response) {
  return Unary(c_, ctx, "ReportResult", [&] { return c_.coordinator->ReportResult(*request); });
}

grpc::Status WorkerServiceImpl::StreamAssignments(
    grpc::ServerContext* ctx, const v1::StreamAssignmentsRequest* request,
    grpc::ServerWriter<v1::AssignmentEvent>* writer) {
  if (absl::Status s = Authorize(c_, *ctx); !s.ok()) return ToGrpc(s);
  absl::StatusOr<uint64_t> generation =
      c_.coordinator->OpenAssignmentStream(request->worker_id());
  if (!generation.ok()) return ToGrpc(generation.status());
  // Headers go out now, so the worker knows the stream is open before any assignment.
  writer->SendInitialMetadata();
  while (!ctx->IsCancelled()) {
    absl::StatusOr<std::vector<v1::AssignmentEvent>> events =
        c_.coordinator->NextAssignments(request->worker_id(), *generation, kStreamPoll);
    if (!events.ok()) return ToGrpc(events.status());
    for (const v1::AssignmentEvent& event : *events) {
      if (!writer->Write(event)) return grpc::Status(grpc::StatusCode::CANCELLED, "worker left");
    }
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "worker left");
}

// ---- RendezvousService ----

grpc::Status RendezvousServiceImpl::Set(grpc::ServerContext* ctx, const v1::SetRequest* request,
                                        v1::SetResponse* response) {
  return Unary(c_, ctx, "Set",
               [&] { return c_.rendezvous->Set(request->key(), request->value()); });
}

grpc::Status RendezvousServiceImpl::Get(grpc::ServerContext* ctx, const v1::GetRequest* request,
                                        v1::GetResponse* response) {
  return Unary(c_, ctx, "Get", [&]() -> absl::Status {
    absl::Time deadline = absl::InfinitePast();
    if (request->wait()) {
      const absl::Duration timeout = absl::Seconds(request->timeout().seconds()) +
                                     absl::Nanoseconds(request->timeout().nanos());
      if (timeout <= absl::ZeroDuration() || timeout > absl::Hours(1)) {
        return absl::InvalidArgumentError("timeout: must be in (0 s, 3600 s] with wait");
      }
      deadline = std::min(absl::Now() + timeout, absl::FromChrono(ctx->deadline()));
    }
    absl::StatusOr<std::vector<std::string>> values = c_.rendezvous->Get(
        {request->keys().begin(), request->keys().end()}, request->wait(), deadline);
    if (!values.ok()) return values.status();
    for (std::string& v : *values) response->add_values(std::move(v));
    return absl::OkStatus();
  });
}

grpc::Status RendezvousServiceImpl::Add(grpc::ServerContext* ctx, const v1::AddRequest* request,
                                        v1::AddResponse* response) {
  return Unary(c_, ctx, "Add", [&]() -> absl::Status {
    absl::StatusOr<int64_t> value = c_.rendezvous->Add(request->key(), request->delta());
    if (!value.ok()) return value.status();
    response->set_value(*value);
    return absl::OkStatus();
  });
}

grpc::Status RendezvousServiceImpl::DeletePrefix(grpc::ServerContext* ctx,
                                                 const v1::DeletePrefixRequest* request,
                                                 v1::DeletePrefixResponse* response) {
  return Unary(c_, ctx, "DeletePrefix", [&]() -> absl::Status {
    absl::StatusOr<uint64_t> deleted = c_.rendezvous->DeletePrefix(request->prefix());
    if (!deleted.ok()) return deleted.status();
    response->set_deleted(*deleted);
    return absl::OkStatus();
  });
}

}  // namespace muppet::server
