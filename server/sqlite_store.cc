#include "server/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace muppet::server {

const char* const kSqliteMigrations[Store::kSchemaVersion] = {
    // 0 -> 1: jobs with their policy state, per-job event logs, workers.
    R"sql(
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        submit_sequence INTEGER NOT NULL UNIQUE,
        state INTEGER NOT NULL,
        request_id TEXT,
        record BLOB NOT NULL,
        policy_state BLOB NOT NULL
      );
      CREATE UNIQUE INDEX jobs_by_request_id ON jobs(request_id) WHERE request_id IS NOT NULL;
      CREATE TABLE events (
        job_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        event BLOB NOT NULL,
        PRIMARY KEY (job_id, sequence)
      ) WITHOUT ROWID;
      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        info BLOB NOT NULL
      );
    )sql",
    // 1 -> 2: listing by state without a scan.
    R"sql(
      CREATE INDEX jobs_by_state ON jobs(state, submit_sequence);
    )sql",
};

namespace {

// A prepared statement, finalised on scope exit.
class Statement {
 public:
  // A statement that failed to prepare fails its first Step with the error.
  Statement(sqlite3* db, const char* sql) : db_(db) {
    prepared_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) == SQLITE_OK;
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void Bind(int i, const std::string& text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void BindBlob(int i, const std::string& bytes) {
    sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t value) { sqlite3_bind_int64(stmt_, i, value); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return prepared_ ? sqlite3_step(stmt_) : SQLITE_ERROR; }
  std::string Blob(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    return data == nullptr
               ? std::string()
               : std::string(static_cast<const char*>(data), sqlite3_column_bytes(stmt_, column));
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  bool prepared_ = false;
};

absl::Status Exec(sqlite3* db, const std::string& sql, const std::string& path) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    absl::Status s = absl::InternalError(absl::StrCat(path, ": ", error ? error : "SQLite error"));
    sqlite3_free(error);
    return s;
  }
  return absl::OkStatus();
}

absl::Status StepError(const Statement& s, const std::string& path, absl::string_view what) {
  return absl::InternalError(absl::StrCat(path, ": ", what, ": ", s.error()));
}

}  // namespace

namespace {

// Takes `path`.lock exclusively and records this process in it; FAILED_PRECONDITION naming
// the holder when another process has it.
absl::StatusOr<int> LockDatabase(const std::string& path) {
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(lock_path, ": cannot open the database's lock: ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[256] = {};
    const ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
    ::close(fd);
    if (error != EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat(lock_path, ": cannot lock: ", std::strerror(error)));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": in use by another coordinator (",
        n > 0 ? absl::StripAsciiWhitespace(holder) : absl::string_view("holder unknown"),
        "); a database serves one coordinator at a time"));
  }
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  const std::string me =
      absl::StrCat("pid ", ::getpid(), " on ", host, " since ",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(lock_path, ": cannot write the lock: ", std::strerror(errno)));
  }
  return fd;
}

absl::StatusOr<sqlite3*> OpenConnection(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::FailedPreconditionError(absl::StrCat(path, ": cannot open database: ", message));
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> SqliteStore::Open(const std::string& path,
                                                         Durability durability) {
  absl::StatusOr<int> lock_fd = LockDatabase(path);
  if (!lock_fd.ok()) return lock_fd.status();
  absl::StatusOr<sqlite3*> db = OpenConnection(path);
  if (!db.ok()) {
    ::close(*lock_fd);
    return db.status();
  }
  // journal_mode is the first read of the file, so it is where a non-database shows itself.
  if (absl::Status s = Exec(*db, "PRAGMA journal_mode=WAL", path); !s.ok()) {
    sqlite3_close(*db);
    ::close(*lock_fd);
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": not a muppet database: ", s.message()));
  }
  absl::StatusOr<sqlite3*> checkpoint_db = OpenConnection(path);
  if (!checkpoint_db.ok()) {
    sqlite3_close(*db);
    ::close(*lock_fd);
    return checkpoint_db.status();
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(*lock_fd, *db, *checkpoint_db, path));
  const char* sync = durability == Durability::kPowerLoss ? "PRAGMA synchronous=FULL"
                                                          : "PRAGMA synchronous=NORMAL";
  if (absl::Status s = Exec(*db, sync, path); !s.ok()) return s;
  if (absl::Status s = Exec(*db, "PRAGMA wal_autocheckpoint=0", path); !s.ok()) return s;
  absl::MutexLock lock(&store->mu_);
  if (absl::Status s = store->Migrate(); !s.ok()) return s;
  if (absl::Status s = store->RecordFiles(); !s.ok()) return s;
  return store;
}

absl::Status SqliteStore::Maintain() {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = CheckFiles(); !s.ok()) return s;
  }
  absl::MutexLock lock(&checkpoint_mu_);
  if (sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                nullptr) != SQLITE_OK) {
    return absl::InternalError(
        absl::StrCat(path_, ": checkpoint: ", sqlite3_errmsg(checkpoint_db_)));
  }
  return absl::OkStatus();
}

SqliteStore::~SqliteStore() {
  sqlite3_close(checkpoint_db_);
  sqlite3_close(db_);  // The last connection to close checkpoints the whole log.
  ::close(lock_fd_);   // Another coordinator may open the database from here on.
}

absl::StatusOr<int> SqliteStore::SchemaVersion() {
  absl::MutexLock lock(&mu_);
  Statement s(db_, "PRAGMA user_version");
  if (s.Step() != SQLITE_ROW) return StepError(s, path_, "reading the schema version");
  return static_cast<int>(s.Int(0));
}

absl::Status SqliteStore::Migrate() {
  int version = 0;
  {
    Statement s(db_, "PRAGMA user_version");
    if (s.Step() != SQLITE_ROW) {
      return StepError(s, path_, "reading the schema version");
    }
    version = static_cast<int>(s.Int(0));
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": schema version ", version,
                                                      " is newer than this muppetd's (",
                                                      kSchemaVersion, "); run a newer muppetd"));
  }
  if (version == 0) {
    // A fresh database has no tables; a version-0 file with tables is someone else's.
    Statement s(db_, "SELECT count(*) FROM sqlite_master");
    if (s.Step() != SQLITE_ROW) return StepError(s, path_, "reading the schema");
    if (s.Int(0) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_, ": not a muppet database (it has tables but no muppet schema)"));
    }
  }
  for (; version < kSchemaVersion; ++version) {
    const std::string sql = absl::StrCat("BEGIN IMMEDIATE;", kSqliteMigrations[version],
                                         "PRAGMA user_version=", version + 1, "; COMMIT;");
    if (absl::Status s = Exec(db_, sql, path_); !s.ok()) {
      Exec(db_, "ROLLBACK", path_).IgnoreError();
      return absl::InternalError(
          absl::StrCat("migrating to schema version ", version + 1, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::Commit(const Mutation& mutation) {
  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) return broken_;
  if (absl::Status s = Exec(db_, "BEGIN IMMEDIATE", path_); !s.ok()) return s;
  absl::Status s = CommitLocked(mutation);
  if (s.ok()) s = Exec(db_, "COMMIT", path_);
  if (!s.ok()) Exec(db_, "ROLLBACK", path_).IgnoreError();
  // Only a commit into the files this store opened is durable.
  return s.ok() ? CheckFiles() : s;
}

namespace {

// (device, inode) of `path`, or nullopt if it does not exist.
std::optional<std::pair<uint64_t, uint64_t>> FileIdentity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::pair<uint64_t, uint64_t>(st.st_dev, st.st_ino);
}

}  // namespace

absl::Status SqliteStore::RecordFiles() {
  const auto db = FileIdentity(path_), wal = FileIdentity(path_ + "-wal");
  if (!db || !wal) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": the database or its write-ahead log is missing after opening"));
  }
  db_file_ = *db;
  wal_file_ = *wal;
  return absl::OkStatus();
}

absl::Status SqliteStore::CheckFiles() {
  if (!broken_.ok()) return broken_;
  for (const auto& [path, id] : {std::pair{path_, db_file_}, {path_ + "-wal", wal_file_}}) {
    const auto now = FileIdentity(path);
    if (now == id) continue;
    broken_ = absl::DataLossError(absl::StrCat(
        path, " was ", now ? "replaced" : "removed",
        " while muppetd had the database open: commits since then are not durable, so no "
        "further write is acknowledged; restart muppetd"));
    return broken_;
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::CommitLocked(const Mutation& mutation) {
  for (const StoredJob* job : mutation.jobs) {
    Statement s(db_,
                "INSERT OR REPLACE INTO jobs (id, submit_sequence, state, request_id, record, "
                "policy_state) VALUES (?, ?, ?, ?, ?, ?)");
    const internal::JobRecord& r = job->record;
    s.Bind(1, r.job().id());
    s.Bind(2, static_cast<int64_t>(r.submit_sequence()));
    s.Bind(3, static_cast<int64_t>(r.job().state()));
    if (r.request_id().empty()) {
      s.BindNull(4);
    } else {
      s.Bind(4, r.request_id());
    }
    s.BindBlob(5, r.SerializeAsString());
    s.BindBlob(6, job->policy_state);
    if (s.Step() != SQLITE_DONE) return StepError(s, path_, "writing a job");
  }
  for (const v1::JobEvent* event : mutation.events) {
    Statement s(db_, "INSERT INTO events (job_id, sequence, event) VALUES (?, ?, ?)");
    s.Bind(1, event->job_id());
    s.Bind(2, static_cast<int64_t>(event->sequence()));
    s.BindBlob(3, event->SerializeAsString());
    if (s.Step() != SQLITE_DONE) return StepError(s, path_, "writing an event");
  }
  for (const v1::WorkerInfo* worker : mutation.workers) {
    Statement s(db_, "INSERT OR REPLACE INTO workers (id, name, info) VALUES (?, ?, ?)");
    s.Bind(1, worker->worker_id());
    s.Bind(2, worker->worker_name());
    s.BindBlob(3, worker->SerializeAsString());
    if (s.Step() != SQLITE_DONE) return StepError(s, path_, "writing a worker");
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedJobs> SqliteStore::LoadJobs() {
  absl::MutexLock lock(&mu_);
  Statement s(
      db_, "SELECT id, record, policy_state, submit_sequence FROM jobs ORDER BY submit_sequence");
  LoadedJobs loaded;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    StoredJob job;
    if (!job.record.ParseFromString(s.Blob(1))) {
      loaded.damaged.push_back(
          {.id = s.Blob(0),
           .submit_sequence = static_cast<uint64_t>(s.Int(3)),
           .error = absl::StrCat(path_, ": the record of job ", s.Blob(0), " is corrupt")});
      continue;
    }
    job.policy_state = s.Blob(2);
    loaded.jobs.push_back(std::move(job));
  }
  if (rc != SQLITE_DONE) return StepError(s, path_, "reading jobs");
  return loaded;
}

absl::StatusOr<std::vector<v1::WorkerInfo>> SqliteStore::LoadWorkers() {
  absl::MutexLock lock(&mu_);
  Statement s(db_, "SELECT id, info FROM workers ORDER BY name, id");
  std::vector<v1::WorkerInfo> workers;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    if (!workers.emplace_back().ParseFromString(s.Blob(1))) {
      return absl::DataLossError(
          absl::StrCat(path_, ": the record of worker ", s.Blob(0), " is corrupt"));
    }
  }
  if (rc != SQLITE_DONE) return StepError(s, path_, "reading workers");
  return workers;
}

absl::StatusOr<std::vector<v1::JobEvent>> SqliteStore::LoadEvents(const std::string& job_id,
                                                                  uint64_t from_sequence,
                                                                  int limit) {
  absl::MutexLock lock(&mu_);
  Statement s(db_,
              "SELECT sequence, event FROM events WHERE job_id = ? AND sequence >= ? "
              "ORDER BY sequence LIMIT ?");
  s.Bind(1, job_id);
  s.Bind(2, static_cast<int64_t>(from_sequence));
  s.Bind(3, static_cast<int64_t>(limit));
  std::vector<v1::JobEvent> events;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    if (!events.emplace_back().ParseFromString(s.Blob(1))) {
      return absl::DataLossError(
          absl::StrCat(path_, ": event ", s.Int(0), " of job ", job_id, " is corrupt"));
    }
  }
  if (rc != SQLITE_DONE) return StepError(s, path_, "reading events");
  return events;
}

}  // namespace muppet::server
