// TLS for muppet's gRPC: the coordinator's server certificate (and, for mutual TLS, the CA its
// clients' certificates must chain to), and the clients' view: the CA that signed the server's
// certificate and an optional client certificate. PEM files are read and checked once, when a
// binary starts, so that a wrong file fails there naming the flag and the file, not at the first
// handshake.
#ifndef MUPPET_BASE_TLS_H_
#define MUPPET_BASE_TLS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace muppet {

// How a client reaches the coordinator. Plaintext unless `enabled` (the binaries enable it unless
// --insecure). Load fills the PEM contents from the files.
struct ClientTls {
  bool enabled = false;
  std::string ca_file;    // --tls-ca: PEM roots the server's certificate must chain to; empty:
                          // the system's.
  std::string cert_file;  // --tls-cert and --tls-key: the client's certificate for mutual TLS;
  std::string key_file;   // both or neither.
  std::string ca_pem, cert_pem, key_pem;
};

// Reads and checks the files `tls` names (a certificate file must hold certificates, a key file
// a private key matching the certificate). INVALID_ARGUMENT naming the flag, the file and what is
// wrong; FAILED_PRECONDITION for a file that cannot be read. Nothing to do when not enabled.
absl::Status LoadClientTls(ClientTls& tls);

// The channel credentials of a loaded `tls`: TLS, or plaintext when not enabled.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ClientTls& tls);

// The flags a child process (muppet-rank) needs to reach the coordinator as its parent does.
std::vector<std::string> ClientTlsFlags(const ClientTls& tls);

// How the coordinator serves. Plaintext when `cert_file` is empty (muppetd allows that only with
// --insecure).
struct ServerTls {
  std::string cert_file;             // --tls-cert: the server's certificate chain (PEM).
  std::string key_file;              // --tls-key: its private key (PEM).
  std::string client_ca_file;        // --tls-client-ca: verify client certificates against it.
  bool require_client_cert = false;  // --require-client-cert: refuse clients without one.
};

// The server credentials for `tls`, its files read and checked as LoadClientTls does;
// INVALID_ARGUMENT also for a client CA or a required client certificate without TLS, and for a
// required client certificate without a client CA.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const ServerTls& tls);

}  // namespace muppet

#endif  // MUPPET_BASE_TLS_H_
