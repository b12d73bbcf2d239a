#include "server/postgres_store.h"

#include <endian.h>
#include <postgresql/libpq-fe.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace muppet::server {

const char* const kPostgresMigrations[Store::kSchemaVersion] = {
    // 0 -> 1: the schema version, the coordinators' lease, jobs with their policy state, per-job
    // event logs, workers.
    R"sql(
      CREATE TABLE muppet_schema (version INTEGER NOT NULL);
      INSERT INTO muppet_schema VALUES (0);
      CREATE TABLE muppet_lease (holder TEXT NOT NULL);
      INSERT INTO muppet_lease VALUES ('');
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        submit_sequence BIGINT NOT NULL UNIQUE,
        state INTEGER NOT NULL,
        request_id TEXT,
        record BYTEA NOT NULL,
        policy_state BYTEA NOT NULL
      );
      CREATE UNIQUE INDEX jobs_by_request_id ON jobs(request_id) WHERE request_id IS NOT NULL;
      CREATE TABLE events (
        job_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        event BYTEA NOT NULL,
        PRIMARY KEY (job_id, sequence)
      );
      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        info BYTEA NOT NULL
      );
    )sql",
    // 1 -> 2: listing by state without a scan.
    R"sql(
      CREATE INDEX jobs_by_state ON jobs(state, submit_sequence);
    )sql",
};

namespace {

// The session-level advisory lock a coordinator holds on its database: "mupp" in ASCII.
constexpr int64_t kLockKey = 0x6d757070;

// A query's result, cleared on scope exit. Results are binary: integers in network order,
// text and bytea as their bytes.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  bool ok() const {
    const ExecStatusType s = PQresultStatus(r_);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  }
  int rows() const { return PQntuples(r_); }
  std::string Bytes(int row, int column) const {
    return std::string(PQgetvalue(r_, row, column), PQgetlength(r_, row, column));
  }
  // A BIGINT column.
  int64_t Int(int row, int column) const {
    uint64_t big_endian = 0;
    std::memcpy(&big_endian, PQgetvalue(r_, row, column), sizeof(big_endian));
    return static_cast<int64_t>(be64toh(big_endian));
  }
  bool Bool(int row, int column) const { return PQgetvalue(r_, row, column)[0] != 0; }
  std::string error() const { return PQresultErrorMessage(r_); }

 private:
  PGresult* r_;
};

struct Param {
  std::string value;
  bool binary = false;  // bytea; else text that PostgreSQL parses as the column's type.
  bool null = false;
};

// One statement with parameters ($1, $2, …) and binary results.
Result Query(PGconn* conn, const char* sql, const std::vector<Param>& params = {}) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const Param& p : params) {
    values.push_back(p.null ? nullptr : p.value.data());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  return Result(PQexecParams(conn, sql, static_cast<int>(params.size()), nullptr, values.data(),
                             lengths.data(), formats.data(), /*resultFormat=*/1));
}

// The URI for messages: the user, host, port and database of `url`, no password.
std::string NameOf(const std::string& url) {
  PQconninfoOption* options = PQconninfoParse(url.c_str(), nullptr);
  if (options == nullptr) return "postgresql://(an unparsable URI)";
  std::string user, host, port, dbname;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string keyword = o->keyword;
    if (keyword == "user") user = o->val;
    if (keyword == "host") host = o->val;
    if (keyword == "port") port = o->val;
    if (keyword == "dbname") dbname = o->val;
  }
  PQconninfoFree(options);
  return absl::StrCat("postgresql://", user, user.empty() ? "" : "@", host, port.empty() ? "" : ":",
                      port, "/", dbname);
}

// "muppetd pid 4242 on host-a" (what the holder's connection shows as its application name).
std::string Holder() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  return absl::StrCat("muppetd pid ", ::getpid(), " on ", host).substr(0, 63);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> PostgresStore::Open(const std::string& url) {
  const std::string name = NameOf(url);
  const std::string application = Holder();
  const char* keywords[] = {"dbname", "application_name", nullptr};
  const char* values[] = {url.c_str(), application.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string error = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat(name, ": cannot connect: ", error));
  }
  absl::BitGen random;
  const std::string lease =
      absl::StrFormat("%s, lease %016x", application, absl::Uniform<uint64_t>(random));
  std::unique_ptr<PostgresStore> store(new PostgresStore(conn, name, lease));
  absl::MutexLock lock(&store->mu_);
  if (absl::Status s = store->Lock(); !s.ok()) return s;
  if (absl::Status s = store->Migrate(); !s.ok()) return s;
  const Result leased = Query(conn, "UPDATE muppet_lease SET holder = $1", {{lease}});
  if (!leased.ok()) {
    return absl::UnavailableError(absl::StrCat(name, ": taking the lease: ", leased.error()));
  }
  return store;
}

PostgresStore::~PostgresStore() { PQfinish(conn_); }  // The lock goes with the session.

absl::Status PostgresStore::Lock() {
  const Param key{absl::StrCat(kLockKey)};
  const Result taken = Query(conn_, "SELECT pg_try_advisory_lock($1::bigint)", {key});
  if (!taken.ok()) {
    return absl::UnavailableError(absl::StrCat(name_, ": taking the lock: ", taken.error()));
  }
  if (!taken.Bool(0, 0)) {
    const Result holder =
        Query(conn_,
              "SELECT a.application_name, coalesce(a.client_addr::text, 'a local socket'), "
              "a.backend_start::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
              "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1::oid",
              {key});
    const std::string who = holder.ok() && holder.rows() > 0
                                ? absl::StrCat(holder.Bytes(0, 0), ", from ", holder.Bytes(0, 1),
                                               ", since ", holder.Bytes(0, 2))
                                : "holder unknown";
    return absl::FailedPreconditionError(
        absl::StrCat(name_, ": in use by another coordinator (", who,
                     "); a database serves one coordinator at a time"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PostgresStore::ReadVersion() {
  const Result schema = Query(conn_,
                              "SELECT to_regclass('muppet_schema') IS NOT NULL, count(*) "
                              "FROM pg_tables WHERE schemaname = current_schema()");
  if (!schema.ok()) {
    return absl::UnavailableError(absl::StrCat(name_, ": reading the schema: ", schema.error()));
  }
  if (!schema.Bool(0, 0)) {
    // A fresh database has no tables; one with tables but no version is someone else's.
    if (schema.Int(0, 1) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(name_, ": not a muppet database (it has tables but no muppet schema)"));
    }
    return 0;
  }
  const Result version = Query(conn_, "SELECT version::bigint FROM muppet_schema");
  if (!version.ok() || version.rows() != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(name_, ": reading the schema version: ", version.error()));
  }
  return static_cast<int>(version.Int(0, 0));
}

absl::Status PostgresStore::Migrate() {
  absl::StatusOr<int> version = ReadVersion();
  if (!version.ok()) return version.status();
  if (*version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(name_, ": schema version ", *version,
                                                      " is newer than this muppetd's (",
                                                      kSchemaVersion, "); run a newer muppetd"));
  }
  for (int v = *version; v < kSchemaVersion; ++v) {
    const std::string sql = absl::StrCat("BEGIN;", kPostgresMigrations[v],
                                         "UPDATE muppet_schema SET version = ", v + 1, "; COMMIT;");
    PGresult* done = PQexec(conn_, sql.c_str());
    const bool ok = PQresultStatus(done) == PGRES_COMMAND_OK;
    const std::string error = PQresultErrorMessage(done);
    PQclear(done);
    if (!ok) {
      PQclear(PQexec(conn_, "ROLLBACK"));
      return absl::InternalError(
          absl::StrCat(name_, ": migrating to schema version ", v + 1, ": ", error));
    }
  }
  return absl::OkStatus();
}

absl::Status PostgresStore::Connected() {
  if (!broken_.ok()) return broken_;
  if (PQstatus(conn_) == CONNECTION_OK) return absl::OkStatus();
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat(name_, ": cannot reach the database: ", PQerrorMessage(conn_)));
  }
  // The lock went with the old session. While it was free another coordinator may have taken
  // the database (its lease is then in muppet_lease) and written it: this one's view is stale.
  absl::Status s = Lock();
  if (s.ok()) {
    const Result holder = Query(conn_, "SELECT holder FROM muppet_lease");
    if (!holder.ok() || holder.rows() != 1) {
      return absl::UnavailableError(absl::StrCat(name_, ": reading the lease: ", holder.error()));
    }
    if (holder.Bytes(0, 0) == lease_) return absl::OkStatus();
    s = absl::FailedPreconditionError(
        absl::StrCat(name_, ": another coordinator (", holder.Bytes(0, 0), ") used it"));
  }
  broken_ = absl::FailedPreconditionError(absl::StrCat(
      "lost the database while disconnected: ", s.message(), "; restart muppetd to reload it"));
  return broken_;
}

absl::Status PostgresStore::Commit(const Mutation& mutation) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Connected(); !s.ok()) return s;
  if (!Result(PQexec(conn_, "BEGIN")).ok()) {
    // Nothing was sent yet: a dropped connection is taken up again once.
    if (absl::Status s = Connected(); !s.ok()) return s;
    if (Result begin(PQexec(conn_, "BEGIN")); !begin.ok()) {
      return absl::UnavailableError(absl::StrCat(name_, ": BEGIN: ", begin.error()));
    }
  }
  if (absl::Status s = CommitLocked(mutation); !s.ok()) {
    PQclear(PQexec(conn_, "ROLLBACK"));
    return s;
  }
  const Result commit(PQexec(conn_, "COMMIT"));
  if (commit.ok()) return absl::OkStatus();
  if (PQstatus(conn_) != CONNECTION_OK) {
    broken_ = absl::UnavailableError(absl::StrCat(
        name_,
        ": the connection broke during COMMIT, so whether it was written is unknown; no "
        "further write is acknowledged: restart muppetd to reload the database"));
    return broken_;
  }
  return absl::InternalError(absl::StrCat(name_, ": COMMIT: ", commit.error()));
}

absl::Status PostgresStore::CommitLocked(const Mutation& mutation) {
  const auto failed = [&](const Result& r, absl::string_view what) {
    return absl::Status(PQstatus(conn_) == CONNECTION_OK ? absl::StatusCode::kInternal
                                                         : absl::StatusCode::kUnavailable,
                        absl::StrCat(name_, ": ", what, ": ", r.error()));
  };
  for (const StoredJob* job : mutation.jobs) {
    const internal::JobRecord& r = job->record;
    const Result written =
        Query(conn_,
              "INSERT INTO jobs (id, submit_sequence, state, request_id, record, policy_state) "
              "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET "
              "submit_sequence = EXCLUDED.submit_sequence, state = EXCLUDED.state, "
              "request_id = EXCLUDED.request_id, record = EXCLUDED.record, "
              "policy_state = EXCLUDED.policy_state",
              {{r.job().id()},
               {absl::StrCat(r.submit_sequence())},
               {absl::StrCat(static_cast<int>(r.job().state()))},
               {r.request_id(), false, r.request_id().empty()},
               {r.SerializeAsString(), true},
               {job->policy_state, true}});
    if (!written.ok()) return failed(written, "writing a job");
  }
  for (const v1::JobEvent* event : mutation.events) {
    const Result written = Query(
        conn_, "INSERT INTO events (job_id, sequence, event) VALUES ($1, $2, $3)",
        {{event->job_id()}, {absl::StrCat(event->sequence())}, {event->SerializeAsString(), true}});
    if (!written.ok()) return failed(written, "writing an event");
  }
  for (const v1::WorkerInfo* worker : mutation.workers) {
    const Result written = Query(
        conn_,
        "INSERT INTO workers (id, name, info) VALUES ($1, $2, $3) "
        "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, "
        "info = EXCLUDED.info",
        {{worker->worker_id()}, {worker->worker_name()}, {worker->SerializeAsString(), true}});
    if (!written.ok()) return failed(written, "writing a worker");
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedJobs> PostgresStore::LoadJobs() {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Connected(); !s.ok()) return s;
  const Result rows = Query(conn_,
                            "SELECT id, record, policy_state, submit_sequence FROM jobs "
                            "ORDER BY submit_sequence");
  if (!rows.ok())
    return absl::UnavailableError(absl::StrCat(name_, ": reading jobs: ", rows.error()));
  LoadedJobs loaded;
  for (int i = 0; i < rows.rows(); ++i) {
    StoredJob job;
    if (!job.record.ParseFromString(rows.Bytes(i, 1))) {
      loaded.damaged.push_back(
          {.id = rows.Bytes(i, 0),
           .submit_sequence = static_cast<uint64_t>(rows.Int(i, 3)),
           .error = absl::StrCat(name_, ": the record of job ", rows.Bytes(i, 0), " is corrupt")});
      continue;
    }
    job.policy_state = rows.Bytes(i, 2);
    loaded.jobs.push_back(std::move(job));
  }
  return loaded;
}

absl::StatusOr<std::vector<v1::WorkerInfo>> PostgresStore::LoadWorkers() {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Connected(); !s.ok()) return s;
  const Result rows = Query(conn_, "SELECT id, info FROM workers ORDER BY name, id");
  if (!rows.ok()) {
    return absl::UnavailableError(absl::StrCat(name_, ": reading workers: ", rows.error()));
  }
  std::vector<v1::WorkerInfo> workers;
  for (int i = 0; i < rows.rows(); ++i) {
    if (!workers.emplace_back().ParseFromString(rows.Bytes(i, 1))) {
      return absl::DataLossError(
          absl::StrCat(name_, ": the record of worker ", rows.Bytes(i, 0), " is corrupt"));
    }
  }
  return workers;
}

absl::StatusOr<std::vector<v1::JobEvent>> PostgresStore::LoadEvents(const std::string& job_id,
                                                                    uint64_t from_sequence,
                                                                    int limit) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Connected(); !s.ok()) return s;
  const Result rows = Query(conn_,
                            "SELECT sequence, event FROM events WHERE job_id = $1 AND "
                            "sequence >= $2 ORDER BY sequence LIMIT $3",
                            {{job_id}, {absl::StrCat(from_sequence)}, {absl::StrCat(limit)}});
  if (!rows.ok()) {
    return absl::UnavailableError(absl::StrCat(name_, ": reading events: ", rows.error()));
  }
  std::vector<v1::JobEvent> events;
  for (int i = 0; i < rows.rows(); ++i) {
    if (!events.emplace_back().ParseFromString(rows.Bytes(i, 1))) {
      return absl::DataLossError(
          absl::StrCat(name_, ": event ", rows.Int(i, 0), " of job ", job_id, " is corrupt"));
    }
  }
  return events;
}

absl::StatusOr<int> PostgresStore::SchemaVersion() {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Connected(); !s.ok()) return s;
  return ReadVersion();
}

absl::Status PostgresStore::Maintain() {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Connected(); !s.ok()) return s;
  if (Result(PQexec(conn_, "SELECT 1")).ok()) return absl::OkStatus();
  return Connected();  // The connection dropped since the last call: take it up again.
}

}  // namespace muppet::server
