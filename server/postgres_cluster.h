// For tests: a PostgreSQL cluster of the test's own (Debian's postgresql-15 binaries), in a new
// temporary directory, listening only on a Unix socket there, with trust authentication, and
// stopped and removed with the object. As root the server runs as the `postgres` user, since
// initdb refuses root.
#ifndef MUPPET_SERVER_POSTGRES_CLUSTER_H_
#define MUPPET_SERVER_POSTGRES_CLUSTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace muppet::server {

class PostgresCluster {
 public:
  // initdb and pg_ctl start. FAILED_PRECONDITION naming the command and its output when one
  // fails (NOT_FOUND when PostgreSQL is not installed).
  static absl::StatusOr<std::unique_ptr<PostgresCluster>> Start();
  ~PostgresCluster();  // pg_ctl stop (immediate), then the directory goes.
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  // Creates the empty database `name`; returns its URI.
  absl::StatusOr<std::string> CreateDatabase(const std::string& name);

  // Runs `sql` (one or more statements) in `database` over a connection of its own.
  absl::Status Exec(const std::string& database, const std::string& sql);

  // postgresql:///database?host=<socket directory>&user=muppet
  std::string Uri(const std::string& database) const;

 private:
  explicit PostgresCluster(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace muppet::server

#endif  // MUPPET_SERVER_POSTGRES_CLUSTER_H_
