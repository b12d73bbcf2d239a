// The coordinator's durable state: jobs (with their policy state), job events and workers, in
// one SQLite database in WAL mode. Every write is one transaction, committed before the
// coordinator acknowledges anything, so an acknowledged job or event survives kill -9.
#ifndef MUPPET_SERVER_STORE_H_
#define MUPPET_SERVER_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "muppet/internal/records.pb.h"
#include "muppet/v1/job.pb.h"
#include "muppet/v1/worker_info.pb.h"

struct sqlite3;

namespace muppet::server {

// How hard a commit pushes to disk (SQLite's `synchronous` in WAL mode).
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

  // Opens or creates the database at `path` and migrates it to kSchemaVersion, holding it
  // exclusively until the store is destroyed (an flock on `path`.lock, which the kernel drops
  // if the process dies). Errors name the file: another coordinator holds it (naming its pid,
  // host and start), it cannot be opened, is not a muppet database, or is from a newer muppet
  // (all FAILED_PRECONDITION).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path,
                                                     Durability durability);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Applies `mutation` atomically. On error nothing is acknowledged: a failed statement writes
  // nothing, and DATA_LOSS, for this and every later commit, means the database file or its
  // write-ahead log was removed or replaced while the store was open (the commit went into a
  // file nobody will read again).
  absl::Status Commit(const Mutation& mutation);

  // Every job, in submission order, and the rows whose record is corrupt (a read error of the
  // database itself is the error).
  absl::StatusOr<LoadedJobs> LoadJobs();

  // Every worker.
  absl::StatusOr<std::vector<v1::WorkerInfo>> LoadWorkers();

  // The events of `job_id` with sequence >= `from_sequence`, in order, at most `limit`.
  absl::StatusOr<std::vector<v1::JobEvent>> LoadEvents(const std::string& job_id,
                                                       uint64_t from_sequence, int limit);

  // The schema version of the open database.
  absl::StatusOr<int> SchemaVersion();

  // Copies committed transactions from the write-ahead log into the database file. Commits
  // never do this themselves (it would stall the commit that crosses the threshold for
  // milliseconds); the server calls it periodically from a background thread, on a connection
  // of its own so that commits go on meanwhile.
  absl::Status Checkpoint();

 private:
  Store(int lock_fd, sqlite3* db, sqlite3* checkpoint_db, std::string path)
      : lock_fd_(lock_fd), db_(db), checkpoint_db_(checkpoint_db), path_(std::move(path)) {}
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the identities of the database file and its log, which must not change.
  absl::Status RecordFiles() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // DATA_LOSS (kept in broken_) once either file is gone or is another file.
  absl::Status CheckFiles() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CommitLocked(const Mutation& mutation) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Held for the store's lifetime: two coordinators on one database would both assign submit
  // sequences and expire each other's workers.
  const int lock_fd_;
  absl::Mutex mu_;
  sqlite3* const db_;  // One connection, serialised by mu_.
  // (device, inode) of the database file and of its write-ahead log.
  std::pair<uint64_t, uint64_t> db_file_ ABSL_GUARDED_BY(mu_), wal_file_ ABSL_GUARDED_BY(mu_);
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  absl::Mutex checkpoint_mu_;
  sqlite3* const checkpoint_db_ ABSL_PT_GUARDED_BY(checkpoint_mu_);
  const std::string path_;
};

// The SQL that takes a database from version i to i + 1 is kMigrations[i]. Only ever appended.
extern const char* const kMigrations[Store::kSchemaVersion];

}  // namespace muppet::server

#endif  // MUPPET_SERVER_STORE_H_
