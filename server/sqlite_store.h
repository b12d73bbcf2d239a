// The embedded store: one SQLite database file in WAL mode, held by one coordinator at a time.
#ifndef MUPPET_SERVER_SQLITE_STORE_H_
#define MUPPET_SERVER_SQLITE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/store.h"

struct sqlite3;

namespace muppet::server {

class SqliteStore final : public Store {
 public:
  // Opens or creates the database at `path` and migrates it to kSchemaVersion, holding it
  // exclusively until the store is destroyed (an flock on `path`.lock, which the kernel drops
  // if the process dies). Errors name the file: another coordinator holds it (naming its pid,
  // host and start), it cannot be opened, is not a muppet database, or is from a newer muppet
  // (all FAILED_PRECONDITION).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path,
                                                     Durability durability);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // DATA_LOSS, for this and every later commit, means the database file or its write-ahead log
  // was removed or replaced while the store was open (the commit went into a file nobody will
  // read again).
  absl::Status Commit(const Mutation& mutation) override;
  absl::StatusOr<LoadedJobs> LoadJobs() override;
  absl::StatusOr<std::vector<v1::WorkerInfo>> LoadWorkers() override;
  absl::StatusOr<std::vector<v1::JobEvent>> LoadEvents(const std::string& job_id,
                                                       uint64_t from_sequence, int limit) override;
  absl::StatusOr<int> SchemaVersion() override;
  // Commits never checkpoint the log themselves (it would stall the commit that crosses the
  // threshold for milliseconds); this does, on a connection of its own.
  absl::Status Maintain() override;
  std::string name() const override { return path_; }

 private:
  SqliteStore(int lock_fd, sqlite3* db, sqlite3* checkpoint_db, std::string path)
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

// The SQL that takes a database from version i to i + 1 is kSqliteMigrations[i]. Only ever
// appended.
extern const char* const kSqliteMigrations[Store::kSchemaVersion];

}  // namespace muppet::server

#endif  // MUPPET_SERVER_SQLITE_STORE_H_
