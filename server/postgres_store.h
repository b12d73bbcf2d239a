// The PostgreSQL store, through libpq: the same tables, schema versions and transactions as the
// SQLite store, in a database that can outlive the coordinator's machine. One connection,
// holding a session-level advisory lock for as long as the store is open, so that one
// coordinator at a time uses the database.
#ifndef MUPPET_SERVER_POSTGRES_STORE_H_
#define MUPPET_SERVER_POSTGRES_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/store.h"

struct pg_conn;

namespace muppet::server {

class PostgresStore final : public Store {
 public:
  // Connects to `url` (a libpq URI, postgresql://user@host:port/db?…), takes the database's
  // lock and migrates it to kSchemaVersion. Errors name the database (its URI without a
  // password): UNAVAILABLE when it cannot be reached; FAILED_PRECONDITION when another
  // coordinator holds it (naming its pid, host and since when), it holds tables but no muppet
  // schema, or its schema is newer than this muppetd's.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& url);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // UNAVAILABLE while the database cannot be reached (nothing written; the next call
  // reconnects). A connection lost during COMMIT leaves its outcome unknown: that commit and
  // every later one fail with UNAVAILABLE, and muppetd must restart to reload. So does losing
  // the lock to another coordinator while disconnected (FAILED_PRECONDITION).
  absl::Status Commit(const Mutation& mutation) override;
  absl::StatusOr<LoadedJobs> LoadJobs() override;
  absl::StatusOr<std::vector<v1::WorkerInfo>> LoadWorkers() override;
  absl::StatusOr<std::vector<v1::JobEvent>> LoadEvents(const std::string& job_id,
                                                       uint64_t from_sequence, int limit) override;
  absl::StatusOr<int> SchemaVersion() override;
  // Checks the connection; after a drop, reconnects and takes the lock again.
  absl::Status Maintain() override;
  std::string name() const override { return name_; }

 private:
  PostgresStore(pg_conn* conn, std::string name, std::string lease)
      : conn_(conn), name_(std::move(name)), lease_(std::move(lease)) {}
  // Takes the advisory lock on this connection; FAILED_PRECONDITION naming its holder.
  absl::Status Lock() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int> ReadVersion() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // broken_, or OK with a working connection that holds the lock.
  absl::Status Connected() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CommitLocked(const Mutation& mutation) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  pg_conn* const conn_ ABSL_PT_GUARDED_BY(mu_);
  const std::string name_;  // The URI without its password, for messages.
  // This store's entry in muppet_lease, written at Open: after a reconnect, another entry there
  // means another coordinator took the database meanwhile.
  const std::string lease_;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
};

// The SQL that takes a database from version i to i + 1 is kPostgresMigrations[i], the same
// schema as kSqliteMigrations[i]. Only ever appended.
extern const char* const kPostgresMigrations[Store::kSchemaVersion];

}  // namespace muppet::server

#endif  // MUPPET_SERVER_POSTGRES_STORE_H_
