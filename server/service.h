// The coordinator's gRPC services: thin adapters from the wire to the Coordinator and the
// KeyValueStore that authenticate the caller and check its role (auth.h) and, for a user, that
// the job is its own; time every unary call into muppet_rpc_duration_seconds; count and log every
// denial (principal and method, never the token); and map absl codes to gRPC codes.
#ifndef MUPPET_SERVER_SERVICE_H_
#define MUPPET_SERVER_SERVICE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/kv_store.h"
#include "base/log.h"
#include "base/rpc.h"
#include "grpcpp/grpcpp.h"
#include "muppet/v1/job.grpc.pb.h"
#include "muppet/v1/rendezvous.grpc.pb.h"
#include "muppet/v1/worker.grpc.pb.h"
#include "server/auth.h"
#include "server/coordinator.h"
#include "server/metrics.h"

namespace muppet::server {

// What every service needs; none owned, all outlive the services.
struct ServiceContext {
  Coordinator* coordinator = nullptr;
  KeyValueStore* rendezvous = nullptr;
  Metrics* metrics = nullptr;
  const Authenticator* auth = nullptr;
  Logger* log = nullptr;
};

class JobServiceImpl final : public v1::JobService::Service {
 public:
  explicit JobServiceImpl(const ServiceContext& context) : c_(context) {}
  grpc::Status SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* request,
                         v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* request,
                         v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;
  grpc::Status ListWorkers(grpc::ServerContext* ctx, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;

 private:
  const ServiceContext c_;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  explicit WorkerServiceImpl(const ServiceContext& context) : c_(context) {}
  grpc::Status RegisterWorker(grpc::ServerContext* ctx, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status StreamAssignments(grpc::ServerContext* ctx,
                                 const v1::StreamAssignmentsRequest* request,
                                 grpc::ServerWriter<v1::AssignmentEvent>* writer) override;
  grpc::Status ReportEpoch(grpc::ServerContext* ctx, const v1::ReportEpochRequest* request,
                           v1::ReportEpochResponse* response) override;
  grpc::Status ReportResult(grpc::ServerContext* ctx, const v1::ReportResultRequest* request,
                            v1::ReportResultResponse* response) override;
  grpc::Status AdoptLadder(grpc::ServerContext* ctx, const v1::AdoptLadderRequest* request,
                           v1::AdoptLadderResponse* response) override;
  grpc::Status ReportCheckpoint(grpc::ServerContext* ctx,
                                const v1::ReportCheckpointRequest* request,
                                v1::ReportCheckpointResponse* response) override;
  grpc::Status BeginAttempt(grpc::ServerContext* ctx, const v1::BeginAttemptRequest* request,
                            v1::BeginAttemptResponse* response) override;

 private:
  const ServiceContext c_;
};

class RendezvousServiceImpl final : public v1::RendezvousService::Service {
 public:
  explicit RendezvousServiceImpl(const ServiceContext& context) : c_(context) {}
  grpc::Status Set(grpc::ServerContext* ctx, const v1::SetRequest* request,
                   v1::SetResponse* response) override;
  grpc::Status Get(grpc::ServerContext* ctx, const v1::GetRequest* request,
                   v1::GetResponse* response) override;
  grpc::Status Add(grpc::ServerContext* ctx, const v1::AddRequest* request,
                   v1::AddResponse* response) override;
  grpc::Status DeletePrefix(grpc::ServerContext* ctx, const v1::DeletePrefixRequest* request,
                            v1::DeletePrefixResponse* response) override;

 private:
  const ServiceContext c_;
};

}  // namespace muppet::server

#endif  // MUPPET_SERVER_SERVICE_H_
