// The TLS flags of the coordinator's clients (muppetctl, muppet-worker, muppet-rank), one
// definition for the three: TLS by default, verified against --tls-ca (or the system's roots),
// an optional client certificate for mutual TLS, plaintext only with --insecure. Link into
// binaries only (the flags are global).
#ifndef MUPPET_BASE_TLS_FLAGS_H_
#define MUPPET_BASE_TLS_FLAGS_H_

#include "absl/status/statusor.h"
#include "base/tls.h"

namespace muppet {

// The flags as a loaded ClientTls. INVALID_ARGUMENT naming the flag for --insecure with a TLS
// flag, or for a file that is not what it should be (LoadClientTls).
absl::StatusOr<ClientTls> ClientTlsFromFlags();

}  // namespace muppet

#endif  // MUPPET_BASE_TLS_FLAGS_H_
