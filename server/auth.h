// Who may call the coordinator: bearer tokens mapped to principals with roles, read from a tokens
// file that holds only SHA-256 hashes of the tokens, and the rules of which role may call which
// service. No gRPC here: the services (service.h) hand in the authorization header.
//
// The tokens file, one token per line (blank lines and lines starting with '#' are ignored):
//
//   sha256:<64 hex digits> <principal> <role>
//
// where the digits are the SHA-256 of the token's bytes (`printf %s "$TOKEN" | sha256sum`), the
// principal is 1 to 64 characters from [A-Za-z0-9._@-], and the role is one of
//   admin   everything;
//   user    JobService: submit jobs; get, list, watch and cancel its own; list workers;
//   worker  WorkerService and RendezvousService only.
#ifndef MUPPET_SERVER_AUTH_H_
#define MUPPET_SERVER_AUTH_H_

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace muppet::server {

enum class Role { kAdmin, kUser, kWorker };

// "admin", "user" or "worker".
absl::string_view RoleName(Role role);

struct Principal {
  std::string name;
  Role role = Role::kAdmin;
};

// The coordinator's three services, for the rules.
enum class ServiceKind { kJob, kWorker, kRendezvous };

// Whether `role` may call the methods of `service` at all (job ownership is checked apart).
bool MayCall(Role role, ServiceKind service);

// Why a call was refused, as the label of muppet_rpc_denials_total.
enum class Denial { kMissingToken, kMalformedHeader, kUnknownToken, kRole, kOwner, kScope };
absl::string_view DenialName(Denial denial);

// A parsed tokens file: immutable, so safe to share between threads.
class TokenTable {
 public:
  // Parses the text of a tokens file; errors name `file`, the line, the rule and the value (a
  // hash is shown only by its first digits).
  static absl::StatusOr<TokenTable> Parse(absl::string_view text, absl::string_view file);
  // Reads and parses the file at `path`; a file that cannot be read is FAILED_PRECONDITION
  // naming it.
  static absl::StatusOr<TokenTable> Read(const std::string& path);

  // The principal whose token this is, or nullopt. The lookup is by the token's SHA-256, so its
  // timing tells nothing about any stored token.
  std::optional<Principal> Find(absl::string_view token) const;
  size_t size() const { return by_hash_.size(); }

 private:
  using Digest = std::array<unsigned char, 32>;
  absl::flat_hash_map<Digest, Principal> by_hash_;
};

// The authentication of a running coordinator. Thread-safe.
class Authenticator {
 public:
  // No tokens file: every call is allowed, as an anonymous admin.
  static std::unique_ptr<Authenticator> AllowAll();
  // Reads the tokens file at `path` (errors as TokenTable::Read).
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromFile(const std::string& path);

  bool enabled() const { return !path_.empty(); }

  // The caller presenting `authorization` (the header's value; nullopt when absent) over a
  // connection whose verified client certificate names `certificate` (its first subject
  // alternative name, or common name; nullopt without one). A token decides; without one, a
  // certificate makes the caller a worker of that name (mutual TLS for workers). UNAUTHENTICATED
  // when both are missing, the header is not "Bearer <token>", the token unknown or the
  // certificate's name no principal name, with `denial` set to why. The token is never part of a
  // message.
  absl::StatusOr<Principal> Authenticate(std::optional<absl::string_view> authorization,
                                         std::optional<absl::string_view> certificate,
                                         Denial* denial) const;

  // Reads the tokens file again. On success the new table answers every later call and the
  // result is the number of tokens; on error the old table stays and the error names the file.
  absl::StatusOr<size_t> Reload();

 private:
  explicit Authenticator(std::string path) : path_(std::move(path)) {}

  const std::string path_;  // Empty: no authentication.
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muppet::server

#endif  // MUPPET_SERVER_AUTH_H_
