// The coordinator's durable state: jobs (with their policy state), job events and workers. Every
// write is one transaction, committed before the coordinator acknowledges anything, so an
// acknowledged job or event survives kill -9. Two backends behind one interface, with the same
// schema versions and guarantees: an embedded SQLite database, the default (sqlite_store.h), and
// PostgreSQL (postgres_store.h), for a store that outlives the coordinator's machine.
#ifndef MUPPET_SERVER_STORE_H_
#define MUPPET_SERVER_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "muppet/internal/records.pb.h"
#include "muppet/v1/job.pb.h"
#include "muppet/v1/worker_info.pb.h"

namespace muppet::server {

// How hard an SQLite commit pushes to disk (`synchronous` in WAL mode). PostgreSQL commits are
// always flushed (synchronous_commit on), which is kPowerLoss.
enum class Durability {
  kProcessCrash,  // NORMAL: survives the process dying (kill -9); power loss may drop the last
                  // commits. The default.
  kPowerLoss,     // FULL: fsync on every commit.
};

// A job as stored: the record and its serialised precision-policy state.
struct StoredJob {
  internal::JobRecord record;
  std::string policy_state;
};

// A job row that cannot be read back (a corrupt record). The row stays in the store as it is.
struct DamagedJob {
  std::string id;
  uint64_t submit_sequence = 0;
  std::string error;  // Naming the file and the job.
};

struct LoadedJobs {
  std::vector<StoredJob> jobs;  // In submission order.
  std::vector<DamagedJob> damaged;
};

// Everything one coordinator operation changes, written in a single transaction.
struct Mutation {
  std::vector<const StoredJob*> jobs;          // Inserted or replaced, by job id.
  std::vector<const v1::JobEvent*> events;     // Appended; (job, sequence) must be new.
  std::vector<const v1::WorkerInfo*> workers;  // Inserted or replaced, by worker id.
};

class Store {
 public:
  // The schema version this binary writes; Open migrates older databases to it.
  static constexpr int kSchemaVersion = 2;

  // Opens `location`: a libpq connection URI ("postgresql://…" or "postgres://…") opens that
  // PostgreSQL database (PostgresStore::Open); anything else is an SQLite database file, created
  // if missing (SqliteStore::Open). Either way the database is migrated to kSchemaVersion and
  // held exclusively until the store is destroyed, and errors name the database.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& location,
                                                     Durability durability);
  virtual ~Store() = default;

  // Applies `mutation` atomically. On error nothing is acknowledged: a failed statement writes
  // nothing. DATA_LOSS (SQLite), or UNAVAILABLE when a commit's outcome is unknown (PostgreSQL),
  // for this and every later commit: the coordinator must restart and reload.
  virtual absl::Status Commit(const Mutation& mutation) = 0;

  // Every job, in submission order, and the rows whose record is corrupt (a read error of the
  // database itself is the error).
  virtual absl::StatusOr<LoadedJobs> LoadJobs() = 0;

  // Every worker.
  virtual absl::StatusOr<std::vector<v1::WorkerInfo>> LoadWorkers() = 0;

  // The events of `job_id` with sequence >= `from_sequence`, in order, at most `limit`.
  virtual absl::StatusOr<std::vector<v1::JobEvent>> LoadEvents(const std::string& job_id,
                                                               uint64_t from_sequence,
                                                               int limit) = 0;

  // The schema version of the open database.
  virtual absl::StatusOr<int> SchemaVersion() = 0;

  // Periodic upkeep, called about once a second from a background thread while commits go on:
  // SQLite copies committed transactions from its write-ahead log into the database file;
  // PostgreSQL checks its connection, reconnecting and taking its lock again after a drop.
  virtual absl::Status Maintain() = 0;

  // The database, for messages and logs: the file, or the URI without its password.
  virtual std::string name() const = 0;
};

}  // namespace muppet::server

#endif  // MUPPET_SERVER_STORE_H_
