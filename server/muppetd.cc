// muppetd: the muppet coordinator. Stores jobs in SQLite or PostgreSQL, places them on workers,
// hosts each job's precision policy, and serves JobService, WorkerService and RendezvousService
// over gRPC plus Prometheus metrics over HTTP.
//
//   muppetd --db=/var/lib/muppet/muppet.db --listen=0.0.0.0:7070 --metrics-listen=0.0.0.0:9464 \
//     --tls-cert=server.pem --tls-key=server.key --tokens-file=/etc/muppet/tokens
//   muppetd --db=postgresql://muppet@db.example:5432/muppet ...
//
// Flags may also come from a file (--config=FILE, "name = value" lines). SIGTERM or SIGINT
// drains: streams end, calls in flight finish (up to --drain-timeout), and it exits 0. SIGHUP
// reads --tokens-file again.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/cli.h"
#include "proto/version.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070", "gRPC address, host:port (port 0: any free).");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Prometheus metrics address, host:port (port 0: any free; empty: no metrics).");
ABSL_FLAG(std::string, db, "muppet.db",
          "The job store: an SQLite database file (created if missing), or a PostgreSQL database "
          "as a libpq URI, postgresql://USER@HOST:PORT/DB (its password from ~/.pgpass or "
          "PGPASSWORD rather than the URI).");
ABSL_FLAG(std::string, durability, "process",
          "SQLite: process: commits survive the process dying (WAL, synchronous=NORMAL) | "
          "power: they survive power loss too (fsync per commit). PostgreSQL commits always do.");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(2),
          "How often workers are told to heartbeat.");
ABSL_FLAG(absl::Duration, lease, absl::Seconds(15),
          "Silence after which a worker is lost and its jobs fail.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "On SIGTERM, how long calls in flight may take to finish.");
ABSL_FLAG(std::string, tokens_file, "",
          "Tokens file: one \"sha256:<hex of the token's SHA-256> <principal> <role>\" line per "
          "token, role admin, user or worker (empty: no authentication). Read again on SIGHUP.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain the gRPC port serves TLS with.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA that client certificates must chain to (mutual TLS). A client presenting one and "
          "no token is a worker named by the certificate's first subject alternative name (or "
          "common name).");
ABSL_FLAG(bool, require_client_cert, false,
          "Refuse clients without a certificate from --tls-client-ca.");
ABSL_FLAG(bool, insecure, false,
          "Serve plaintext gRPC without --tls-cert: for a trusted network or loopback only.");
ABSL_FLAG(std::string, port_file, "",
          "Write \"<grpc port> <metrics port>\" here once serving (for scripts using port 0).");

namespace muppet {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "muppetd: %s\n", message.c_str());
  return kUsageExitCode;
}

absl::StatusOr<server::ServerOptions> OptionsFromFlags() {
  server::ServerOptions options{.listen = absl::GetFlag(FLAGS_listen),
                                .metrics_listen = absl::GetFlag(FLAGS_metrics_listen),
                                .db_path = absl::GetFlag(FLAGS_db)};
  const std::string durability = absl::GetFlag(FLAGS_durability);
  if (durability == "power") {
    options.durability = server::Durability::kPowerLoss;
  } else if (durability != "process") {
    return absl::InvalidArgumentError(
        absl::StrCat("--durability: must be process or power, got \"", durability, "\""));
  }
  options.coordinator.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  options.coordinator.lease = absl::GetFlag(FLAGS_lease);
  if (options.coordinator.heartbeat_interval <= absl::ZeroDuration() ||
      options.coordinator.lease <= 2 * options.coordinator.heartbeat_interval) {
    return absl::InvalidArgumentError(
        "--lease: must exceed twice --heartbeat-interval, which must be positive");
  }
  options.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  options.tls = {.cert_file = absl::GetFlag(FLAGS_tls_cert),
                 .key_file = absl::GetFlag(FLAGS_tls_key),
                 .client_ca_file = absl::GetFlag(FLAGS_tls_client_ca),
                 .require_client_cert = absl::GetFlag(FLAGS_require_client_cert)};
  const bool tls_flags = !options.tls.cert_file.empty() || !options.tls.key_file.empty() ||
                         !options.tls.client_ca_file.empty() || options.tls.require_client_cert;
  if (absl::GetFlag(FLAGS_insecure) && tls_flags) {
    return absl::InvalidArgumentError(
        "--insecure: plaintext cannot be combined with --tls-cert, --tls-key, --tls-client-ca or "
        "--require-client-cert");
  }
  if (!absl::GetFlag(FLAGS_insecure) && options.tls.cert_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key: required, or --insecure to serve plaintext gRPC (trusted "
        "networks only)");
  }
  return options;
}

// SIGHUP: the tokens file again. A file that does not parse leaves the old tokens in force.
void ReloadTokens(server::CoordinatorServer& server, Logger& log) {
  const absl::StatusOr<size_t> tokens = server.ReloadTokens();
  if (tokens.ok()) {
    log.Info("tokens_reloaded", {{"tokens", absl::StrCat(*tokens)}});
  } else {
    log.Warn("tokens_reload_failed", {{"error", std::string(tokens.status().message())}});
  }
}

int Run() {
  absl::StatusOr<server::ServerOptions> options = OptionsFromFlags();
  if (!options.ok()) return Fail(std::string(options.status().message()));

  // Signals are taken by one thread with sigwait, so they must be blocked before any other
  // thread (gRPC's, SQLite's) starts and inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Logger log(stderr);
  absl::StatusOr<std::unique_ptr<server::CoordinatorServer>> server =
      server::CoordinatorServer::Start(*options, &log);
  if (!server.ok()) return Fail(std::string(server.status().message()));
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty()) {
    std::ofstream out(port_file + ".tmp");
    out << (*server)->port() << " " << (*server)->metrics_port() << "\n";
    out.close();
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) ReloadTokens(**server, log);
  log.Info("signal", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
  (*server)->Shutdown(absl::GetFlag(FLAGS_drain_timeout));
  return 0;
}

}  // namespace
}  // namespace muppet

int main(int argc, char** argv) {
  const std::string usage = absl::StrCat(
      "the muppet coordinator (version ", muppet::kVersion,
      ").\n  muppetd --tls-cert=FILE --tls-key=FILE | --insecure [--db=muppet.db] "
      "[--listen=127.0.0.1:7070] [--metrics-listen=127.0.0.1:9464] [--tokens-file=FILE] "
      "[--config=FILE]");
  const absl::StatusOr<std::vector<std::string>> args = muppet::ParseMuppetCommandLine(
      argc, argv, {.program = "muppetd", .usage = usage, .config_file = true});
  if (!args.ok()) return muppet::Fail(std::string(args.status().message()));
  return muppet::Run();
}
