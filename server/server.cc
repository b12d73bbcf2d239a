#include "server/server.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "proto/version.h"

namespace muppet::server {
namespace {

// Serves gRPC's reflection service on one server, or not. Linking grpc++_reflection registers
// its plugin for every server the process builds, so this option takes it out, and puts one
// back where wanted.
class ReflectionOption : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool serve) : serve_(serve) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    auto reflection = std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>();
    const std::string name = reflection->name();
    std::erase_if(*plugins, [&](const auto& p) { return p->name() == name; });
    if (serve_) plugins->push_back(std::move(reflection));
  }

 private:
  const bool serve_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const ServerOptions& options, Logger* log) {
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer());
  s->log_ = log;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options.db_path, options.durability);
  if (!store.ok()) return store.status();
  const std::string db = (*store)->name();
  s->metrics_ = std::make_unique<Metrics>(kVersion);
  if (options.tokens_file.empty()) {
    s->auth_ = Authenticator::AllowAll();
  } else {
    absl::StatusOr<std::unique_ptr<Authenticator>> auth =
        Authenticator::FromFile(options.tokens_file);
    if (!auth.ok()) return auth.status();
    s->auth_ = *std::move(auth);
  }
  s->rendezvous_ = std::make_unique<KeyValueStore>();
  CoordinatorOptions coordinator_options = options.coordinator;
  KeyValueStore* rendezvous = s->rendezvous_.get();
  coordinator_options.on_rendezvous_end = [rendezvous](const std::string& prefix) {
    rendezvous->DeletePrefix(prefix).IgnoreError();
  };
  absl::StatusOr<std::unique_ptr<Coordinator>> coordinator =
      Coordinator::Create(*std::move(store), coordinator_options, s->metrics_.get(), log);
  if (!coordinator.ok()) return coordinator.status();
  s->coordinator_ = *std::move(coordinator);

  const ServiceContext context{.coordinator = s->coordinator_.get(),
                               .rendezvous = s->rendezvous_.get(),
                               .metrics = s->metrics_.get(),
                               .auth = s->auth_.get(),
                               .log = log};
  s->job_service_ = std::make_unique<JobServiceImpl>(context);
  s->worker_service_ = std::make_unique<WorkerServiceImpl>(context);
  s->rendezvous_service_ = std::make_unique<RendezvousServiceImpl>(context);
  // Health stays open for probes (it tells only SERVING or not). Reflection, which would
  // describe the API to anyone, is served only by a coordinator without authentication: gRPC's
  // reflection service cannot be made to check our tokens.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<ReflectionOption>(!s->auth_->enabled()));
  // gRPC sets SO_REUSEPORT by default, which would let a second muppetd on the same port
  // "start" and take half the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  builder.AddListeningPort(options.listen, *credentials, &s->port_);
  builder.RegisterService(s->job_service_.get());
  builder.RegisterService(s->worker_service_.get());
  builder.RegisterService(s->rendezvous_service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("--listen: cannot serve gRPC on ", options.listen, " (address in use?)"));
  }
  if (!options.metrics_listen.empty()) {
    try {
      s->exposer_ = std::make_unique<prometheus::Exposer>(options.metrics_listen);
    } catch (const std::exception& e) {
      s->Shutdown(absl::ZeroDuration());
      return absl::UnavailableError(absl::StrCat("--metrics-listen: cannot serve metrics on ",
                                                 options.metrics_listen, ": ", e.what()));
    }
    s->exposer_->RegisterCollectable(s->metrics_->registry());
    s->metrics_port_ = s->exposer_->GetListeningPorts().at(0);
  }
  const absl::Duration period =
      std::min(absl::Seconds(1), options.coordinator.lease / 4);
  CoordinatorServer* self = s.get();
  // Housekeeping off the request path: lost workers, and the store's upkeep.
  s->lease_thread_ = std::thread([self, period] {
    while (!self->stop_leases_.WaitForNotificationWithTimeout(period)) {
      self->coordinator_->ExpireLeases();
      self->coordinator_->MaintainStore();
    }
  });
  log->Info("serving", {{"grpc", absl::StrCat(s->port_)},
                        {"metrics", absl::StrCat(s->metrics_port_)},
                        {"db", db},
                        {"auth", s->auth_->enabled() ? options.tokens_file : "none"},
                        {"tls", options.tls.cert_file.empty()         ? "off (plaintext)"
                                : options.tls.require_client_cert     ? "mutual (required)"
                                : !options.tls.client_ca_file.empty() ? "mutual (optional)"
                                                                      : "on"},
                        {"version", kVersion}});
  return s;
}

absl::StatusOr<size_t> CoordinatorServer::ReloadTokens() {
  if (!auth_->enabled()) {
    return absl::FailedPreconditionError("no --tokens-file to reload: authentication is off");
  }
  return auth_->Reload();
}

void CoordinatorServer::Shutdown(absl::Duration drain) {
  if (shut_down_.exchange(true)) return;
  if (log_ != nullptr) {
    log_->Info("draining", {{"timeout_seconds", absl::StrCat(absl::ToDoubleSeconds(drain))}});
  }
  if (coordinator_ != nullptr) coordinator_->Shutdown();  // Streams end first...
  if (rendezvous_ != nullptr) rendezvous_->Shutdown();
  if (server_ != nullptr) {
    // ...so that unary calls in flight are all that Shutdown waits for.
    server_->Shutdown(absl::ToChronoTime(absl::Now() + drain));
    server_->Wait();
  }
  stop_leases_.Notify();
  if (lease_thread_.joinable()) lease_thread_.join();
  exposer_.reset();
  if (log_ != nullptr) log_->Info("stopped");
}

CoordinatorServer::~CoordinatorServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace muppet::server
