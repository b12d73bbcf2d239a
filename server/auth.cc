#include "server/auth.h"

#include <openssl/sha.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace muppet::server {
namespace {

constexpr absl::string_view kHashPrefix = "sha256:";
constexpr size_t kMaxPrincipal = 64;

bool IsPrincipalName(absl::string_view s) {
  if (s.empty() || s.size() > kMaxPrincipal) return false;
  for (const char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '@' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

std::optional<Role> ParseRole(absl::string_view s) {
  if (s == "admin") return Role::kAdmin;
  if (s == "user") return Role::kUser;
  if (s == "worker") return Role::kWorker;
  return std::nullopt;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The 32 bytes of 64 hex digits, or nullopt.
template <typename Digest>
std::optional<Digest> ParseDigest(absl::string_view hex) {
  Digest digest;
  if (hex.size() != 2 * digest.size()) return std::nullopt;
  for (size_t i = 0; i < digest.size(); ++i) {
    const int hi = HexDigit(hex[2 * i]), lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    digest[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return digest;
}

// A value for an error message: hashes by their first digits only.
std::string Shown(absl::string_view field) {
  if (field.size() <= 20) return std::string(field);
  return absl::StrCat(field.substr(0, 16), "...");
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kUser:
      return "user";
    case Role::kWorker:
      return "worker";
  }
  return "unknown";
}

bool MayCall(Role role, ServiceKind service) {
  switch (role) {
    case Role::kAdmin:
      return true;
    case Role::kUser:
      return service == ServiceKind::kJob;
    case Role::kWorker:
      return service == ServiceKind::kWorker || service == ServiceKind::kRendezvous;
  }
  return false;
}

absl::string_view DenialName(Denial denial) {
  switch (denial) {
    case Denial::kMissingToken:
      return "missing_token";
    case Denial::kMalformedHeader:
      return "malformed_header";
    case Denial::kUnknownToken:
      return "unknown_token";
    case Denial::kRole:
      return "role";
    case Denial::kOwner:
      return "owner";
    case Denial::kScope:
      return "rendezvous_scope";
  }
  return "unknown";
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text, absl::string_view file) {
  TokenTable table;
  absl::flat_hash_map<Digest, int> line_of;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = absl::StrCat(file, ":", line_number, ": ");
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "expected \"sha256:<64 hex digits> <principal> <role>\", got ",
                       fields.size(), " fields"));
    }
    if (!absl::StartsWith(fields[0], kHashPrefix)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "the hash must start with \"sha256:\", got \"", Shown(fields[0]), "\""));
    }
    const std::optional<Digest> digest = ParseDigest<Digest>(fields[0].substr(kHashPrefix.size()));
    if (!digest) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "the hash must be 64 hex digits after \"sha256:\", got \"", Shown(fields[0]),
          "\" (", fields[0].size() - kHashPrefix.size(), " characters)"));
    }
    if (!IsPrincipalName(fields[1])) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "principal: must be 1 to ", kMaxPrincipal,
                       " characters from [A-Za-z0-9._@-], got \"", Shown(fields[1]), "\""));
    }
    const std::optional<Role> role = ParseRole(fields[2]);
    if (!role) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "role: must be admin, user or worker, got \"", Shown(fields[2]), "\""));
    }
    const auto [it, inserted] = line_of.emplace(*digest, line_number);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "the same token's hash is already on line ", it->second));
    }
    table.by_hash_[*digest] = Principal{.name = std::string(fields[1]), .role = *role};
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat("--tokens-file: cannot read ", path));
  }
  return Parse(text.str(), path);
}

std::optional<Principal> TokenTable::Find(absl::string_view token) const {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
  const auto it = by_hash_.find(digest);
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

std::unique_ptr<Authenticator> Authenticator::AllowAll() {
  return std::unique_ptr<Authenticator>(new Authenticator(""));
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromFile(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("--tokens-file: empty path");
  std::unique_ptr<Authenticator> auth(new Authenticator(path));
  if (absl::StatusOr<size_t> n = auth->Reload(); !n.ok()) return n.status();
  return auth;
}

absl::StatusOr<size_t> Authenticator::Reload() {
  absl::StatusOr<TokenTable> table = TokenTable::Read(path_);
  if (!table.ok()) return table.status();
  const size_t n = table->size();
  auto shared = std::make_shared<const TokenTable>(*std::move(table));
  absl::MutexLock lock(&mu_);
  table_ = std::move(shared);
  return n;
}

absl::StatusOr<Principal> Authenticator::Authenticate(
    std::optional<absl::string_view> authorization, std::optional<absl::string_view> certificate,
    Denial* denial) const {
  if (!enabled()) return Principal{.name = "", .role = Role::kAdmin};
  if (!authorization && certificate) {
    if (!IsPrincipalName(*certificate)) {
      *denial = Denial::kUnknownToken;
      return absl::UnauthenticatedError(
          absl::StrCat("the client certificate's name \"", Shown(*certificate),
                       "\" is no principal name (1 to 64 characters from [A-Za-z0-9._@-])"));
    }
    return Principal{.name = std::string(*certificate), .role = Role::kWorker};
  }
  if (!authorization) {
    *denial = Denial::kMissingToken;
    return absl::UnauthenticatedError("missing token: send \"authorization: Bearer <token>\"");
  }
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWith(*authorization, kBearer)) {
    *denial = Denial::kMalformedHeader;
    return absl::UnauthenticatedError(
        "malformed authorization header: expected \"Bearer <token>\"");
  }
  std::shared_ptr<const TokenTable> table;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
  }
  std::optional<Principal> principal = table->Find(authorization->substr(kBearer.size()));
  if (!principal) {
    *denial = Denial::kUnknownToken;
    return absl::UnauthenticatedError("unknown token");
  }
  return *std::move(principal);
}

}  // namespace muppet::server
