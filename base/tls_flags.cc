#include "base/tls_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, tls_ca, "",
          "PEM file of the CA the coordinator's certificate must chain to (default: the system's "
          "roots).");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate to present to the coordinator (mutual TLS); with --tls-key.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(bool, insecure, false,
          "Plaintext gRPC, no TLS: for a coordinator started with --insecure on a trusted "
          "network only.");

namespace muppet {

absl::StatusOr<ClientTls> ClientTlsFromFlags() {
  ClientTls tls{.enabled = !absl::GetFlag(FLAGS_insecure),
                .ca_file = absl::GetFlag(FLAGS_tls_ca),
                .cert_file = absl::GetFlag(FLAGS_tls_cert),
                .key_file = absl::GetFlag(FLAGS_tls_key)};
  if (!tls.enabled && (!tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty())) {
    return absl::InvalidArgumentError(
        "--insecure: plaintext cannot be combined with --tls-ca, --tls-cert or --tls-key");
  }
  if (absl::Status s = LoadClientTls(tls); !s.ok()) return s;
  return tls;
}

}  // namespace muppet
