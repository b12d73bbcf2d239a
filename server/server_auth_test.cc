// Who may call what, over real gRPC on 127.0.0.1: every RPC of the three services against every
// role, a missing and an unknown token (one table); job ownership; request ids per owner; the
// tokens file reloaded in place. (Reflection off with tokens: tests/auth_test.py.)
#include <openssl/sha.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "muppet/v1/job.grpc.pb.h"
#include "muppet/v1/rendezvous.grpc.pb.h"
#include "muppet/v1/worker.grpc.pb.h"
#include "server/server.h"
#include "server/test_placement.h"

namespace muppet::server {
namespace {

std::string TempPath(const std::string& name) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  return path;
}

std::string TokenLine(const std::string& token, const std::string& principal,
                      const std::string& role) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  std::string line = "sha256:";
  for (unsigned char b : digest) absl::StrAppend(&line, absl::Hex(b, absl::kZeroPad2));
  return absl::StrCat(line, " ", principal, " ", role, "\n");
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

v1::JobSpec Spec() {
  v1::JobSpec spec;
  spec.mutable_model()->set_name("lenet5");
  spec.mutable_dataset()->set_name("fashion-mnist");
  spec.set_batch_size(32);
  spec.set_epochs(2);
  spec.mutable_optimizer()->set_learning_rate(0.05);
  spec.mutable_precision()->set_kind(v1::PrecisionPolicySpec::KIND_FP32);
  return spec;
}

// The callers of the matrix: a token each ("" sends none).
const std::map<std::string, std::string>& Tokens() {
  static const auto* tokens = new std::map<std::string, std::string>{
      {"admin", "tok-admin"},   {"alice", "tok-alice"}, {"bob", "tok-bob"},
      {"worker", "tok-worker"}, {"none", ""},           {"unknown", "tok-guess"}};
  return *tokens;
}

class ServerAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_file_ = TempPath("tokens");
    db_ = TempPath("auth.db");
    Write(tokens_file_,
          TokenLine("tok-admin", "ops", "admin") + TokenLine("tok-alice", "alice", "user") +
              TokenLine("tok-bob", "bob", "user") + TokenLine("tok-worker", "w1", "worker"));
    Start(tokens_file_);
  }

  void Start(const std::string& tokens_file) {
    ServerOptions options{
        .listen = "127.0.0.1:0", .metrics_listen = "", .db_path = db_, .tokens_file = tokens_file};
    auto server = CoordinatorServer::Start(options, &log_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    jobs_ = v1::JobService::NewStub(channel_);
    workers_ = v1::WorkerService::NewStub(channel_);
    rendezvous_ = v1::RendezvousService::NewStub(channel_);
  }

  // A context carrying `token` (none when empty) and a short deadline.
  static std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1500));
    return ctx;
  }

  absl::StatusOr<v1::Job> Submit(const std::string& token, const std::string& request_id = "") {
    v1::SubmitJobRequest request;
    *request.mutable_spec() = Spec();
    request.set_request_id(request_id);
    v1::Job job;
    const grpc::Status s = jobs_->SubmitJob(Context(token).get(), request, &job);
    if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), "");
    return job;
  }

  grpc::StatusCode ListJobs(const std::string& token, const std::string& owner,
                            std::vector<std::string>* ids = nullptr) {
    v1::ListJobsRequest request;
    request.set_owner(owner);
    v1::ListJobsResponse response;
    const grpc::Status s = jobs_->ListJobs(Context(token).get(), request, &response);
    if (ids != nullptr) {
      ids->clear();
      for (const v1::Job& j : response.jobs()) ids->push_back(j.id());
    }
    return s.error_code();
  }

  // Every RPC of the three services, with a minimal request; the code it answers `token`.
  // Rendezvous calls use `placed`'s worker and prefix, so that allowed callers succeed.
  std::map<std::string, std::function<grpc::StatusCode(const std::string&)>> Rpcs(
      const std::string& alice_job, const TestPlacement& placed) {
    std::map<std::string, std::function<grpc::StatusCode(const std::string&)>> rpcs;
    auto unary = [](auto call) {
      return [call](const std::string& token) { return call(Context(token).get()).error_code(); };
    };
    rpcs["SubmitJob"] = [this](const std::string& token) {
      const auto job = Submit(token);
      return static_cast<grpc::StatusCode>(job.status().code());
    };
    rpcs["GetJob"] = unary([this, alice_job](grpc::ClientContext* ctx) {
      v1::GetJobRequest r;
      r.set_job_id(alice_job);
      v1::Job out;
      return jobs_->GetJob(ctx, r, &out);
    });
    rpcs["ListJobs"] = [this](const std::string& token) { return ListJobs(token, ""); };
    rpcs["CancelJob"] = unary([this, alice_job](grpc::ClientContext* ctx) {
      v1::CancelJobRequest r;
      r.set_job_id(alice_job);
      v1::Job out;
      return jobs_->CancelJob(ctx, r, &out);
    });
    rpcs["WatchJob"] = unary([this, alice_job](grpc::ClientContext* ctx) {
      v1::WatchJobRequest r;
      r.set_job_id(alice_job);
      auto reader = jobs_->WatchJob(ctx, r);
      v1::JobEvent event;
      if (reader->Read(&event)) return grpc::Status::OK;  // Allowed: its history streams.
      return reader->Finish();
    });
    rpcs["ListWorkers"] = unary([this](grpc::ClientContext* ctx) {
      v1::ListWorkersResponse out;
      return jobs_->ListWorkers(ctx, v1::ListWorkersRequest(), &out);
    });
    rpcs["RegisterWorker"] = unary([this](grpc::ClientContext* ctx) {
      v1::RegisterWorkerRequest r;  // No name: INVALID_ARGUMENT once allowed.
      v1::RegisterWorkerResponse out;
      return workers_->RegisterWorker(ctx, r, &out);
    });
    rpcs["Heartbeat"] = unary([this](grpc::ClientContext* ctx) {
      v1::HeartbeatResponse out;
      return workers_->Heartbeat(ctx, v1::HeartbeatRequest(), &out);
    });
    rpcs["StreamAssignments"] = unary([this](grpc::ClientContext* ctx) {
      v1::StreamAssignmentsRequest r;
      r.set_worker_id("wrk-0000000000000000");
      auto reader = workers_->StreamAssignments(ctx, r);
      v1::AssignmentEvent event;
      while (reader->Read(&event)) {
      }
      return reader->Finish();
    });
    rpcs["ReportEpoch"] = unary([this](grpc::ClientContext* ctx) {
      v1::ReportEpochResponse out;
      return workers_->ReportEpoch(ctx, v1::ReportEpochRequest(), &out);
    });
    rpcs["ReportResult"] = unary([this](grpc::ClientContext* ctx) {
      v1::ReportResultResponse out;
      return workers_->ReportResult(ctx, v1::ReportResultRequest(), &out);
    });
    rpcs["AdoptLadder"] = unary([this](grpc::ClientContext* ctx) {
      v1::AdoptLadderResponse out;
      return workers_->AdoptLadder(ctx, v1::AdoptLadderRequest(), &out);
    });
    rpcs["ReportCheckpoint"] = unary([this](grpc::ClientContext* ctx) {
      v1::ReportCheckpointResponse out;
      return workers_->ReportCheckpoint(ctx, v1::ReportCheckpointRequest(), &out);
    });
    rpcs["BeginAttempt"] = unary([this](grpc::ClientContext* ctx) {
      v1::BeginAttemptResponse out;
      return workers_->BeginAttempt(ctx, v1::BeginAttemptRequest(), &out);
    });
    rpcs["Set"] = unary([this, placed](grpc::ClientContext* ctx) {
      v1::SetRequest r;
      r.set_key(placed.rendezvous_prefix + "k");
      r.set_value("v");
      r.set_worker_id(placed.worker_id);
      v1::SetResponse out;
      return rendezvous_->Set(ctx, r, &out);
    });
    rpcs["Get"] = unary([this, placed](grpc::ClientContext* ctx) {
      v1::GetRequest r;
      r.add_keys(placed.rendezvous_prefix + "k");
      r.set_worker_id(placed.worker_id);
      v1::GetResponse out;
      return rendezvous_->Get(ctx, r, &out);
    });
    rpcs["Add"] = unary([this, placed](grpc::ClientContext* ctx) {
      v1::AddRequest r;
      r.set_key(placed.rendezvous_prefix + "n");
      r.set_delta(1);
      r.set_worker_id(placed.worker_id);
      v1::AddResponse out;
      return rendezvous_->Add(ctx, r, &out);
    });
    rpcs["DeletePrefix"] = unary([this, placed](grpc::ClientContext* ctx) {
      v1::DeletePrefixRequest r;
      r.set_prefix(placed.rendezvous_prefix + "n");
      r.set_worker_id(placed.worker_id);
      v1::DeletePrefixResponse out;
      return rendezvous_->DeletePrefix(ctx, r, &out);
    });
    return rpcs;
  }

  Logger log_{stderr};
  std::string tokens_file_;
  std::string db_;
  std::unique_ptr<CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
  std::unique_ptr<v1::RendezvousService::Stub> rendezvous_;
};

// What a caller gets: let through to the method (which may still refuse the minimal request on
// its own grounds), PERMISSION_DENIED, or UNAUTHENTICATED.
enum class Expect { kAllowed, kDenied, kUnauthenticated };

TEST_F(ServerAuthTest, EveryRpcAgainstEveryRole) {
  // A job placed on a worker gives the rendezvous calls a scope; alice's job then queues.
  const absl::StatusOr<TestPlacement> placed = PlaceTestJob(server_->coordinator());
  ASSERT_TRUE(placed.ok()) << placed.status();
  const absl::StatusOr<v1::Job> job = Submit("tok-alice");
  ASSERT_TRUE(job.ok()) << job.status();
  constexpr Expect A = Expect::kAllowed, D = Expect::kDenied, U = Expect::kUnauthenticated;
  // Columns: admin, alice (the job's owner), bob (another user), worker, no token, unknown token.
  const std::vector<std::string> callers = {"admin", "alice", "bob", "worker", "none", "unknown"};
  const std::map<std::string, std::vector<Expect>> table = {
      {"SubmitJob", {A, A, A, D, U, U}},
      {"GetJob", {A, A, D, D, U, U}},
      {"ListJobs", {A, A, A, D, U, U}},
      {"WatchJob", {A, A, D, D, U, U}},
      {"ListWorkers", {A, A, A, D, U, U}},
      {"RegisterWorker", {A, D, D, A, U, U}},
      {"Heartbeat", {A, D, D, A, U, U}},
      {"StreamAssignments", {A, D, D, A, U, U}},
      {"ReportEpoch", {A, D, D, A, U, U}},
      {"ReportResult", {A, D, D, A, U, U}},
      {"AdoptLadder", {A, D, D, A, U, U}},
      {"ReportCheckpoint", {A, D, D, A, U, U}},
      {"BeginAttempt", {A, D, D, A, U, U}},
      {"Set", {A, D, D, A, U, U}},
      {"Get", {A, D, D, A, U, U}},
      {"Add", {A, D, D, A, U, U}},
      {"DeletePrefix", {A, D, D, A, U, U}},
      // Last, so that the job still runs for the rest: bob's and the worker's cancels are refused
      // before alice's succeeds and the admin's finds it ended (FAILED_PRECONDITION, allowed).
      {"CancelJob", {A, A, D, D, U, U}},
  };
  auto rpcs = Rpcs(job->id(), *placed);
  ASSERT_EQ(rpcs.size(), table.size());  // Every RPC of the three services is in the table.
  for (const char* name :
       {"SubmitJob", "GetJob", "ListJobs", "WatchJob", "ListWorkers", "RegisterWorker", "Heartbeat",
        "StreamAssignments", "ReportEpoch", "ReportResult", "AdoptLadder", "ReportCheckpoint",
        "BeginAttempt", "Set", "Get", "Add", "DeletePrefix", "CancelJob"}) {
    const std::vector<Expect>& row = table.at(name);
    // Cancels in the order bob, worker, none, unknown, alice, admin.
    const std::vector<size_t> order = std::string(name) == "CancelJob"
                                          ? std::vector<size_t>{2, 3, 4, 5, 1, 0}
                                          : std::vector<size_t>{0, 1, 2, 3, 4, 5};
    for (const size_t i : order) {
      const grpc::StatusCode code = rpcs.at(name)(Tokens().at(callers[i]));
      const std::string where = absl::StrCat(name, " by ", callers[i], ": code ", code);
      switch (row[i]) {
        case Expect::kAllowed:
          EXPECT_NE(code, grpc::StatusCode::PERMISSION_DENIED) << where;
          EXPECT_NE(code, grpc::StatusCode::UNAUTHENTICATED) << where;
          // The rendezvous calls are complete and in scope: they succeed.
          if (std::string(name) == "Set" || std::string(name) == "Get" ||
              std::string(name) == "Add" || std::string(name) == "DeletePrefix") {
            EXPECT_EQ(code, grpc::StatusCode::OK) << where;
          }
          break;
        case Expect::kDenied:
          EXPECT_EQ(code, grpc::StatusCode::PERMISSION_DENIED) << where;
          break;
        case Expect::kUnauthenticated:
          EXPECT_EQ(code, grpc::StatusCode::UNAUTHENTICATED) << where;
          break;
      }
    }
  }
  v1::GetJobRequest get;
  get.set_job_id(job->id());
  v1::Job cancelled;
  ASSERT_TRUE(jobs_->GetJob(Context("tok-admin").get(), get, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(ServerAuthTest, JobsRecordTheirOwnerAndUsersListTheirOwn) {
  const auto a = Submit("tok-alice"), b = Submit("tok-bob"), o = Submit("tok-admin");
  ASSERT_TRUE(a.ok() && b.ok() && o.ok());
  EXPECT_EQ(a->owner(), "alice");
  EXPECT_EQ(b->owner(), "bob");
  EXPECT_EQ(o->owner(), "ops");
  std::vector<std::string> ids;
  EXPECT_EQ(ListJobs("tok-alice", "", &ids), grpc::StatusCode::OK);
  EXPECT_EQ(ids, std::vector<std::string>{a->id()});
  EXPECT_EQ(ListJobs("tok-alice", "alice", &ids), grpc::StatusCode::OK);
  EXPECT_EQ(ids, std::vector<std::string>{a->id()});
  EXPECT_EQ(ListJobs("tok-bob", "alice", &ids), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ListJobs("tok-admin", "", &ids), grpc::StatusCode::OK);
  EXPECT_EQ(ids, (std::vector<std::string>{o->id(), b->id(), a->id()}));
  EXPECT_EQ(ListJobs("tok-admin", "bob", &ids), grpc::StatusCode::OK);
  EXPECT_EQ(ids, std::vector<std::string>{b->id()});
}

TEST_F(ServerAuthTest, RequestIdsAreEachOwnersOwn) {
  const auto first = Submit("tok-alice", "nightly-1");
  const auto again = Submit("tok-alice", "nightly-1");
  const auto other = Submit("tok-bob", "nightly-1");
  ASSERT_TRUE(first.ok() && again.ok() && other.ok());
  EXPECT_EQ(again->id(), first->id());
  EXPECT_NE(other->id(), first->id());  // Bob's retry key never hands him alice's job.
  EXPECT_EQ(other->owner(), "bob");
  // And after a restart, from the store.
  server_.reset();
  Start(tokens_file_);
  EXPECT_EQ(Submit("tok-bob", "nightly-1")->id(), other->id());
  EXPECT_EQ(Submit("tok-alice", "nightly-1")->id(), first->id());
}

TEST_F(ServerAuthTest, ReloadedTokensTakeEffectAtOnce) {
  ASSERT_TRUE(Submit("tok-alice").ok());
  Write(tokens_file_, TokenLine("tok-admin", "ops", "admin") +
                          TokenLine("tok-alice-2", "alice", "user") +
                          TokenLine("tok-bob", "bob", "admin"));
  ASSERT_EQ(*server_->ReloadTokens(), 3u);
  EXPECT_EQ(Submit("tok-alice").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Submit("tok-alice-2").ok());
  std::vector<std::string> ids;
  EXPECT_EQ(ListJobs("tok-bob", "alice", &ids), grpc::StatusCode::OK);  // Bob is an admin now.
  EXPECT_EQ(ids.size(), 2u);

  Write(tokens_file_, "not a tokens file\n");
  EXPECT_EQ(server_->ReloadTokens().status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Submit("tok-alice-2").ok());  // A bad file leaves the tokens in force.
}

TEST_F(ServerAuthTest, AMissingTokensFileStopsTheStart) {
  ServerOptions options{.listen = "127.0.0.1:0",
                        .metrics_listen = "",
                        .db_path = TempPath("missing.db"),
                        .tokens_file = TempPath("no-tokens")};
  const auto server = CoordinatorServer::Start(options, &log_);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(server.status().message().find("no-tokens"), std::string::npos);
}

}  // namespace
}  // namespace muppet::server
