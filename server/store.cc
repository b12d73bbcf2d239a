#include "server/store.h"

#include "absl/strings/match.h"
#include "server/postgres_store.h"
#include "server/sqlite_store.h"

namespace muppet::server {

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& location,
                                                   Durability durability) {
  if (absl::StartsWith(location, "postgresql://") || absl::StartsWith(location, "postgres://")) {
    return PostgresStore::Open(location);
  }
  return SqliteStore::Open(location, durability);
}

}  // namespace muppet::server
