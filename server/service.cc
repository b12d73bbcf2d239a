#include "server/service.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace muppet::server {
namespace {

// How long a stream waits before it looks again at whether its client went away.
constexpr absl::Duration kStreamPoll = absl::Milliseconds(500);

// Counts and logs a refused call; returns `status`. The log names the principal (when known) and
// the method, never the token.
absl::Status Deny(const ServiceContext& c, absl::string_view method, absl::string_view principal,
                  Denial denial, absl::Status status) {
  c.metrics->ObserveDenial(method, DenialName(denial));
  c.log->Warn("denied", {{"method", std::string(method)},
                         {"principal", std::string(principal)},
                         {"reason", std::string(DenialName(denial))},
                         {"error", std::string(status.message())}});
  return status;
}

// The caller, if it may call `method` of `service`: UNAUTHENTICATED without a known token,
// PERMISSION_DENIED for a role that may not.
absl::StatusOr<Principal> Authorize(const ServiceContext& c, const grpc::ServerContext& ctx,
                                    ServiceKind service, absl::string_view method) {
  std::optional<absl::string_view> header;
  const auto& metadata = ctx.client_metadata();
  if (const auto it = metadata.find("authorization"); it != metadata.end()) {
    header = absl::string_view(it->second.data(), it->second.size());
  }
  // A client certificate counts only once verified against --tls-client-ca.
  std::optional<std::string> certificate;
  if (const auto peer = ctx.auth_context(); peer != nullptr && peer->IsPeerAuthenticated()) {
    const std::vector<grpc::string_ref> names = peer->GetPeerIdentity();
    if (!names.empty()) certificate = std::string(names[0].data(), names[0].size());
  }
  Denial denial = Denial::kUnknownToken;
  absl::StatusOr<Principal> principal = c.auth->Authenticate(header, certificate, &denial);
  if (!principal.ok()) return Deny(c, method, "", denial, principal.status());
  if (!MayCall(principal->role, service)) {
    return Deny(c, method, principal->name, Denial::kRole,
                absl::PermissionDeniedError(absl::StrCat(method, ": the ",
                                                         RoleName(principal->role), " role of ",
                                                         principal->name, " may not call it")));
  }
  return principal;
}

// A user may act on its own jobs only; admins on every job.
absl::Status CheckOwner(const ServiceContext& c, absl::string_view method, const Principal& p,
                        const v1::Job& job) {
  if (p.role == Role::kAdmin || job.owner() == p.name) return absl::OkStatus();
  return Deny(c, method, p.name, Denial::kOwner,
              absl::PermissionDeniedError(
                  absl::StrCat(method, ": job ", job.id(), " is not one of ", p.name, "'s jobs")));
}

// The job named `job_id`, if `p` may act on it.
absl::Status CheckOwner(const ServiceContext& c, absl::string_view method, const Principal& p,
                        const std::string& job_id) {
  if (p.role == Role::kAdmin) return absl::OkStatus();
  absl::StatusOr<v1::Job> job = c.coordinator->GetJob(job_id);
  if (!job.ok()) return job.status();
  return CheckOwner(c, method, p, *job);
}

// The rendezvous quota of the placement whose keys lie under `prefix`.
KeyValueStore::Quota RendezvousQuota(const std::string& prefix) {
  return {.scope = prefix, .max_keys = 1024, .max_bytes = 16 << 20};
}

// The quota of the placement `key` lies under, if `worker_id` may touch it (coordinator.h);
// a refusal is counted and logged as a denial.
absl::StatusOr<KeyValueStore::Quota> RendezvousScope(const ServiceContext& c,
                                                     absl::string_view method, const Principal& p,
                                                     const std::string& worker_id,
                                                     const std::string& key) {
  absl::StatusOr<std::string> prefix = c.coordinator->RendezvousScope(worker_id, key);
  if (prefix.status().code() == absl::StatusCode::kPermissionDenied) {
    return Deny(c, method, p.name, Denial::kScope, prefix.status());
  }
  if (!prefix.ok()) return prefix.status();
  return RendezvousQuota(*prefix);
}

// Runs a unary handler: authorises, times it, converts its status. `body` takes the caller.
template <typename Body>
grpc::Status Unary(const ServiceContext& c, grpc::ServerContext* ctx, ServiceKind service,
                   absl::string_view method, Body&& body) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Principal> principal = Authorize(c, *ctx, service, method);
  const absl::Status s = principal.ok() ? body(*principal) : principal.status();
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
  return Unary(c_, ctx, ServiceKind::kJob, "SubmitJob", [&](const Principal& p) {
    return Fill(c_.coordinator->SubmitJob(*request, p.name), response);
  });
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                                    v1::Job* response) {
  return Unary(c_, ctx, ServiceKind::kJob, "GetJob", [&](const Principal& p) -> absl::Status {
    absl::StatusOr<v1::Job> job = c_.coordinator->GetJob(request->job_id());
    if (!job.ok()) return job.status();
    if (absl::Status s = CheckOwner(c_, "GetJob", p, *job); !s.ok()) return s;
    *response = *std::move(job);
    return absl::OkStatus();
  });
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* ctx,
                                      const v1::ListJobsRequest* request,
                                      v1::ListJobsResponse* response) {
  return Unary(c_, ctx, ServiceKind::kJob, "ListJobs", [&](const Principal& p) -> absl::Status {
    if (p.role == Role::kAdmin) return Fill(c_.coordinator->ListJobs(*request), response);
    // A user lists its own jobs: no owner means its own, another owner is refused.
    if (!request->owner().empty() && request->owner() != p.name) {
      return Deny(c_, "ListJobs", p.name, Denial::kOwner,
                  absl::PermissionDeniedError(absl::StrCat(
                      "ListJobs: owner: ", p.name, " may list its own jobs only, asked for \"",
                      request->owner().substr(0, 64), "\"")));
    }
    v1::ListJobsRequest own = *request;
    own.set_owner(p.name);
    return Fill(c_.coordinator->ListJobs(own), response);
  });
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* ctx,
                                       const v1::CancelJobRequest* request, v1::Job* response) {
  return Unary(c_, ctx, ServiceKind::kJob, "CancelJob", [&](const Principal& p) -> absl::Status {
    if (absl::Status s = CheckOwner(c_, "CancelJob", p, request->job_id()); !s.ok()) return s;
    return Fill(c_.coordinator->CancelJob(*request), response);
  });
}

grpc::Status JobServiceImpl::ListWorkers(grpc::ServerContext* ctx,
                                         const v1::ListWorkersRequest* request,
                                         v1::ListWorkersResponse* response) {
  return Unary(c_, ctx, ServiceKind::kJob, "ListWorkers", [&](const Principal&) {
    return Fill(c_.coordinator->ListWorkers(*request), response);
  });
}

grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* ctx,
                                      const v1::WatchJobRequest* request,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  absl::StatusOr<Principal> principal = Authorize(c_, *ctx, ServiceKind::kJob, "WatchJob");
  if (!principal.ok()) return ToGrpc(principal.status());
  if (absl::Status s = CheckOwner(c_, "WatchJob", *principal, request->job_id()); !s.ok()) {
    return ToGrpc(s);
  }
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
  return Unary(c_, ctx, ServiceKind::kWorker, "RegisterWorker", [&](const Principal&) {
    return Fill(c_.coordinator->RegisterWorker(*request), response);
  });
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* ctx,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  return Unary(c_, ctx, ServiceKind::kWorker, "Heartbeat", [&](const Principal&) {
    return Fill(c_.coordinator->Heartbeat(*request), response);
  });
}

grpc::Status WorkerServiceImpl::ReportEpoch(grpc::ServerContext* ctx,
                                            const v1::ReportEpochRequest* request,
                                            v1::ReportEpochResponse* response) {
  return Unary(c_, ctx, ServiceKind::kWorker, "ReportEpoch", [&](const Principal&) {
    return Fill(c_.coordinator->ReportEpoch(*request), response);
  });
}

grpc::Status WorkerServiceImpl::AdoptLadder(grpc::ServerContext* ctx,
                                            const v1::AdoptLadderRequest* request,
                                            v1::AdoptLadderResponse* response) {
  return Unary(c_, ctx, ServiceKind::kWorker, "AdoptLadder", [&](const Principal&) {
    return Fill(c_.coordinator->AdoptLadder(*request), response);
  });
}

grpc::Status WorkerServiceImpl::ReportCheckpoint(grpc::ServerContext* ctx,
                                                 const v1::ReportCheckpointRequest* request,
                                                 v1::ReportCheckpointResponse* response) {
  return Unary(c_, ctx, ServiceKind::kWorker, "ReportCheckpoint",
               [&](const Principal&) { return c_.coordinator->ReportCheckpoint(*request); });
}

grpc::Status WorkerServiceImpl::BeginAttempt(grpc::ServerContext* ctx,
                                             const v1::BeginAttemptRequest* request,
                                             v1::BeginAttemptResponse* response) {
  return Unary(c_, ctx, ServiceKind::kWorker, "BeginAttempt", [&](const Principal&) {
    return Fill(c_.coordinator->BeginAttempt(*request), response);
  });
}

grpc::Status WorkerServiceImpl::ReportResult(grpc::ServerContext* ctx,
                                             const v1::ReportResultRequest* request,
                                             v1::ReportResultResponse* response) {
  return Unary(c_, ctx, ServiceKind::kWorker, "ReportResult",
               [&](const Principal&) { return c_.coordinator->ReportResult(*request); });
}

grpc::Status WorkerServiceImpl::StreamAssignments(
    grpc::ServerContext* ctx, const v1::StreamAssignmentsRequest* request,
    grpc::ServerWriter<v1::AssignmentEvent>* writer) {
  if (absl::StatusOr<Principal> p = Authorize(c_, *ctx, ServiceKind::kWorker, "StreamAssignments");
      !p.ok()) {
    return ToGrpc(p.status());
  }
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
  return Unary(c_, ctx, ServiceKind::kRendezvous, "Set", [&](const Principal& p) -> absl::Status {
    absl::StatusOr<KeyValueStore::Quota> quota =
        RendezvousScope(c_, "Set", p, request->worker_id(), request->key());
    if (!quota.ok()) return quota.status();
    return c_.rendezvous->Set(request->key(), request->value(), &*quota);
  });
}

grpc::Status RendezvousServiceImpl::Get(grpc::ServerContext* ctx, const v1::GetRequest* request,
                                        v1::GetResponse* response) {
  return Unary(c_, ctx, ServiceKind::kRendezvous, "Get", [&](const Principal& p) -> absl::Status {
    for (const std::string& key : request->keys()) {
      if (auto quota = RendezvousScope(c_, "Get", p, request->worker_id(), key); !quota.ok()) {
        return quota.status();
      }
    }
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
  return Unary(c_, ctx, ServiceKind::kRendezvous, "Add", [&](const Principal& p) -> absl::Status {
    absl::StatusOr<KeyValueStore::Quota> quota =
        RendezvousScope(c_, "Add", p, request->worker_id(), request->key());
    if (!quota.ok()) return quota.status();
    absl::StatusOr<int64_t> value = c_.rendezvous->Add(request->key(), request->delta(), &*quota);
    if (!value.ok()) return value.status();
    response->set_value(*value);
    return absl::OkStatus();
  });
}

grpc::Status RendezvousServiceImpl::DeletePrefix(grpc::ServerContext* ctx,
                                                 const v1::DeletePrefixRequest* request,
                                                 v1::DeletePrefixResponse* response) {
  return Unary(
      c_, ctx, ServiceKind::kRendezvous, "DeletePrefix", [&](const Principal& p) -> absl::Status {
        if (auto quota =
                RendezvousScope(c_, "DeletePrefix", p, request->worker_id(), request->prefix());
            !quota.ok()) {
          return quota.status();
        }
        absl::StatusOr<uint64_t> deleted = c_.rendezvous->DeletePrefix(request->prefix());
        if (!deleted.ok()) return deleted.status();
        response->set_deleted(*deleted);
        return absl::OkStatus();
      });
}

}  // namespace muppet::server
