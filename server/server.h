// A running coordinator: store, coordinator, rendezvous, authentication, the gRPC server (with
// health checking, and reflection when it runs without authentication), the Prometheus exposer
// and the lease checker. muppetd is this plus flags;
// tests and benchmarks start it in-process.
#ifndef MUPPET_SERVER_SERVER_H_
#define MUPPET_SERVER_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "base/kv_store.h"
#include "base/log.h"
#include "base/tls.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/exposer.h"
#include "server/auth.h"
#include "server/coordinator.h"
#include "server/metrics.h"
#include "server/service.h"
#include "server/store.h"

namespace muppet::server {

struct ServerOptions {
  std::string listen = "127.0.0.1:7070";          // host:port; port 0 picks a free one.
  std::string metrics_listen = "127.0.0.1:9464";  // host:port; empty disables the exposer.
  std::string db_path = "muppet.db";
  Durability durability = Durability::kProcessCrash;
  CoordinatorOptions coordinator;
  // The tokens file (auth.h) every call's bearer token is looked up in; empty: no
  // authentication, every call allowed.
  std::string tokens_file;
  // TLS on the gRPC port; plaintext when tls.cert_file is empty.
  ServerTls tls;
};

class CoordinatorServer {
 public:
  // Opens the store, loads it and starts serving. Errors name the file or address at fault.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(const ServerOptions& options,
                                                                  Logger* log);
  ~CoordinatorServer();

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  Coordinator& coordinator() { return *coordinator_; }

  // Reads the tokens file again (muppetd does on SIGHUP); later calls see the new tokens. On error
  // the old tokens stay. FAILED_PRECONDITION without a tokens file. Thread-safe.
  absl::StatusOr<size_t> ReloadTokens();

  // Stops accepting calls, ends streams, waits up to `drain` for calls in flight, then stops.
  // Idempotent.
  void Shutdown(absl::Duration drain);

 private:
  CoordinatorServer() = default;

  Logger* log_ = nullptr;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<KeyValueStore> rendezvous_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<JobServiceImpl> job_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<RendezvousServiceImpl> rendezvous_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  absl::Notification stop_leases_;
  std::thread lease_thread_;
  std::atomic<bool> shut_down_{false};
  int port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace muppet::server

#endif  // MUPPET_SERVER_SERVER_H_
