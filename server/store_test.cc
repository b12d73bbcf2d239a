// The store's contract, run against both backends (an SQLite file, and a PostgreSQL database in
// a cluster the test starts), then what is particular to each.
#include "server/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/postgres_cluster.h"
#include "server/postgres_store.h"
#include "server/sqlite_store.h"

namespace muppet::server {
namespace {

std::string TempPath(const std::string& name) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
  return path;
}

StoredJob MakeJob(const std::string& id, uint64_t sequence, v1::JobState state) {
  StoredJob job;
  job.record.mutable_job()->set_id(id);
  job.record.mutable_job()->set_state(state);
  job.record.mutable_job()->mutable_spec()->mutable_model()->set_name("lenet5");
  job.record.set_submit_sequence(sequence);
  job.policy_state = "policy-" + id;
  return job;
}

v1::JobEvent MakeEvent(const std::string& job_id, uint64_t sequence) {
  v1::JobEvent event;
  event.set_job_id(job_id);
  event.set_sequence(sequence);
  event.mutable_epoch()->set_epoch(static_cast<uint32_t>(sequence));
  return event;
}

enum class Backend { kSqlite, kPostgres };

// One database per test, on the backend the test is instantiated with, and direct access to it
// for tests that age or damage it.
class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  static void SetUpTestSuite() {
    auto cluster = PostgresCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  // A new, empty database; its location for Store::Open.
  std::string NewDatabase(const std::string& name) {
    if (GetParam() == Backend::kSqlite) return TempPath(name + ".db");
    auto uri = cluster_->CreateDatabase(name);
    EXPECT_TRUE(uri.ok()) << uri.status();
    database_ = name;
    return *uri;
  }

  // Runs `sql` on the database directly, outside any store.
  void Raw(const std::string& location, const std::string& sql) {
    if (GetParam() == Backend::kPostgres) {
      ASSERT_TRUE(cluster_->Exec(database_, sql).ok()) << sql;
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(location.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << sql << ": " << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  bool postgres() const { return GetParam() == Backend::kPostgres; }
  // How each backend's messages name the database.
  std::string Named(const std::string& location) const {
    return postgres() ? absl::StrCat("postgresql://muppet@", cluster_dir(), "/", database_)
                      : location;
  }
  std::string cluster_dir() const {
    const std::string uri = cluster_->Uri("x");
    return uri.substr(uri.find("host=") + 5, uri.find("&user") - uri.find("host=") - 5);
  }

  static PostgresCluster* cluster_;
  std::string database_;
};

PostgresCluster* StoreTest::cluster_ = nullptr;

// SQL that ends the coordinators' sessions on `database`.
std::string TerminateSessions(const std::string& database) {
  return absl::StrCat("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '",
                      database, "' AND application_name LIKE 'muppetd%'");
}

TEST_P(StoreTest, ReopenFindsJobsEventsWorkersAndPolicyState) {
  const std::string path = NewDatabase("reopen");
  {
    auto store = Store::Open(path, Durability::kProcessCrash);
    ASSERT_TRUE(store.ok()) << store.status();
    const StoredJob a = MakeJob("job-a", 1, v1::JOB_STATE_RUNNING);
    const StoredJob b = MakeJob("job-b", 2, v1::JOB_STATE_QUEUED);
    const v1::JobEvent e1 = MakeEvent("job-a", 1), e2 = MakeEvent("job-a", 2);
    v1::WorkerInfo w;
    w.set_worker_id("wrk-1");
    w.set_worker_name("host");
    ASSERT_TRUE((*store)->Commit({.jobs = {&a, &b}, .events = {&e1, &e2}, .workers = {&w}}).ok());
    // Replacing a job keeps one row.
    StoredJob a2 = a;
    a2.record.mutable_job()->set_state(v1::JOB_STATE_SUCCEEDED);
    a2.policy_state = "policy-after";
    ASSERT_TRUE((*store)->Commit({.jobs = {&a2}}).ok());
  }
  auto store = Store::Open(path, Durability::kPowerLoss);
  ASSERT_TRUE(store.ok()) << store.status();
  auto loaded = (*store)->LoadJobs();
  ASSERT_TRUE(loaded.ok());
  const std::vector<StoredJob>& jobs = loaded->jobs;
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_TRUE(loaded->damaged.empty());
  EXPECT_EQ(jobs[0].record.job().id(), "job-a");
  EXPECT_EQ(jobs[0].record.job().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(jobs[0].policy_state, "policy-after");
  EXPECT_EQ(jobs[1].record.job().spec().model().name(), "lenet5");
  auto events = (*store)->LoadEvents("job-a", 2, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].epoch().epoch(), 2u);
  auto workers = (*store)->LoadWorkers();
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ((*workers)[0].worker_name(), "host");
}

TEST_P(StoreTest, AFailedCommitWritesNothing) {
  auto store = Store::Open(NewDatabase("atomic"), Durability::kProcessCrash);
  ASSERT_TRUE(store.ok());
  const StoredJob a = MakeJob("job-a", 1, v1::JOB_STATE_QUEUED);
  const v1::JobEvent e1 = MakeEvent("job-a", 1);
  ASSERT_TRUE((*store)->Commit({.jobs = {&a}, .events = {&e1}}).ok());
  // A duplicate event sequence fails the transaction, and the job in it is not written either.
  const StoredJob b = MakeJob("job-b", 2, v1::JOB_STATE_QUEUED);
  EXPECT_FALSE((*store)->Commit({.jobs = {&b}, .events = {&e1}}).ok());
  EXPECT_EQ((*store)->LoadJobs()->jobs.size(), 1u);
}

TEST_P(StoreTest, MigratesAVersionOneDatabase) {
  const std::string path = NewDatabase("v1");
  Raw(path, postgres()
                ? absl::StrCat(kPostgresMigrations[0], "UPDATE muppet_schema SET version = 1;")
                : absl::StrCat(kSqliteMigrations[0], "PRAGMA user_version=1;"));
  auto store = Store::Open(path, Durability::kProcessCrash);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->SchemaVersion(), Store::kSchemaVersion);
  const StoredJob a = MakeJob("job-a", 1, v1::JOB_STATE_QUEUED);
  EXPECT_TRUE((*store)->Commit({.jobs = {&a}}).ok());
}

TEST_P(StoreTest, RejectsANewerSchemaNamingTheDatabase) {
  const std::string path = NewDatabase("newer");
  Raw(path, postgres() ? "CREATE TABLE muppet_schema (version INTEGER NOT NULL); "
                         "INSERT INTO muppet_schema VALUES (99);"
                       : "PRAGMA user_version=99");
  auto store = Store::Open(path, Durability::kProcessCrash);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(Named(path) + ": schema version 99 is newer"),
            std::string::npos)
      << store.status();
}

TEST_P(StoreTest, RejectsADatabaseOfSomeoneElses) {
  const std::string path = NewDatabase("other");
  Raw(path, "CREATE TABLE t (x INTEGER)");
  auto store = Store::Open(path, Durability::kProcessCrash);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(Named(path) + ": not a muppet database"),
            std::string::npos)
      << store.status();
}

TEST_P(StoreTest, ACorruptRecordIsReportedNamingTheJobAndTheRestLoad) {
  const std::string path = NewDatabase("corrupt");
  {
    auto store = Store::Open(path, Durability::kProcessCrash);
    const StoredJob a = MakeJob("job-a", 1, v1::JOB_STATE_QUEUED);
    const StoredJob b = MakeJob("job-b", 2, v1::JOB_STATE_QUEUED);
    ASSERT_TRUE((*store)->Commit({.jobs = {&a, &b}}).ok());
  }
  Raw(path, postgres() ? "UPDATE jobs SET record = decode('ffffffff', 'hex') WHERE id = 'job-a'"
                       : "UPDATE jobs SET record = x'ffffffff' WHERE id = 'job-a'");
  auto store = Store::Open(path, Durability::kProcessCrash);
  ASSERT_TRUE(store.ok());
  auto loaded = (*store)->LoadJobs();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->jobs.size(), 1u);
  EXPECT_EQ(loaded->jobs[0].record.job().id(), "job-b");
  ASSERT_EQ(loaded->damaged.size(), 1u);
  EXPECT_EQ(loaded->damaged[0].id, "job-a");
  EXPECT_EQ(loaded->damaged[0].submit_sequence, 1u);
  EXPECT_NE(loaded->damaged[0].error.find(Named(path) + ": the record of job job-a is corrupt"),
            std::string::npos);
}

TEST_P(StoreTest, ASecondOpenOfTheSameDatabaseIsRefusedNamingTheHolder) {
  const std::string path = NewDatabase("exclusive");
  {
    auto first = Store::Open(path, Durability::kProcessCrash);
    ASSERT_TRUE(first.ok()) << first.status();
    auto second = Store::Open(path, Durability::kProcessCrash);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
    const std::string message(second.status().message());
    EXPECT_NE(message.find(Named(path) + ": in use by another coordinator ("), std::string::npos)
        << message;
    EXPECT_NE(message.find(absl::StrCat("pid ", getpid(), " on ")), std::string::npos) << message;
  }
  // Released with the store (and if the process dies: by the kernel, or with the session).
  EXPECT_TRUE(Store::Open(path, Durability::kProcessCrash).ok());
}

// What only PostgreSQL has: a connection, and other coordinators that can reach the database.
class PostgresStoreTest : public StoreTest {};

// The coordinator's connection drops (a restarted server, a network blip). The
// next commit takes it up again, with the lock, and nothing is lost.
TEST_P(PostgresStoreTest, TakesUpADroppedConnectionAgain) {
  const std::string uri = NewDatabase("dropped");
  auto store = Store::Open(uri, Durability::kProcessCrash);
  ASSERT_TRUE(store.ok()) << store.status();
  const StoredJob a = MakeJob("job-a", 1, v1::JOB_STATE_QUEUED);
  ASSERT_TRUE((*store)->Commit({.jobs = {&a}}).ok());
  ASSERT_TRUE(cluster_->Exec("postgres", TerminateSessions("dropped")).ok());
  const StoredJob b = MakeJob("job-b", 2, v1::JOB_STATE_QUEUED);
  EXPECT_TRUE((*store)->Commit({.jobs = {&b}}).ok());
  ASSERT_TRUE(cluster_->Exec("postgres", TerminateSessions("dropped")).ok());
  EXPECT_TRUE((*store)->Maintain().ok());
  EXPECT_EQ((*store)->LoadJobs()->jobs.size(), 2u);
  // It holds the lock again.
  EXPECT_EQ(Store::Open(uri, Durability::kProcessCrash).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// While the connection was down, another coordinator took the database: this one's view is
// stale, so it acknowledges nothing from then on.
TEST_P(PostgresStoreTest, RefusesToGoOnAfterAnotherCoordinatorTookTheDatabase) {
  const std::string uri = NewDatabase("taken");
  auto store = Store::Open(uri, Durability::kProcessCrash);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(cluster_->Exec("postgres", TerminateSessions("taken")).ok());
  ASSERT_TRUE(Store::Open(uri, Durability::kProcessCrash).ok());  // Opened and closed again.
  const StoredJob a = MakeJob("job-a", 1, v1::JOB_STATE_QUEUED);
  const absl::Status lost = (*store)->Commit({.jobs = {&a}});
  EXPECT_EQ(lost.code(), absl::StatusCode::kFailedPrecondition) << lost;
  EXPECT_NE(lost.message().find("lost the database while disconnected"), std::string::npos) << lost;
  EXPECT_EQ((*store)->Maintain().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PostgresStoreOpenTest, AnUnreachableDatabaseIsUnavailableAndItsPasswordIsNotShown) {
  auto store = Store::Open("postgresql://muppet:s3cret@/jobs?host=/nonexistent-muppet-socket",
                           Durability::kProcessCrash);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  const std::string message(store.status().message());
  EXPECT_NE(message.find("postgresql://muppet@/nonexistent-muppet-socket/jobs: cannot connect"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
                         });
INSTANTIATE_TEST_SUITE_P(Backends, PostgresStoreTest, ::testing::Values(Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>&) { return "Postgres"; });

TEST(SqliteStoreTest, RejectsAFileThatIsNotADatabase) {
  const std::string text = TempPath("text.db");
  std::ofstream(text) << "these are not the bytes of an SQLite database, but a long line of text";
  auto store = Store::Open(text, Durability::kProcessCrash);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a muppet database"), std::string::npos)
      << store.status();
}

// Deleting the write-ahead log (or replacing the database) under a running store would let
// commits be acknowledged into a file nobody reads again: the first commit after it fails, and
// so does every later one.
TEST(SqliteStoreTest, ARemovedOrReplacedFileStopsAcknowledgingCommits) {
  for (const std::string suffix : {"-wal", ""}) {
    const std::string path = TempPath("vanishing" + suffix + ".db");
    auto store = Store::Open(path, Durability::kProcessCrash);
    ASSERT_TRUE(store.ok()) << store.status();
    const StoredJob a = MakeJob("job-a", 1, v1::JOB_STATE_QUEUED);
    ASSERT_TRUE((*store)->Commit({.jobs = {&a}}).ok());
    const std::string victim = path + suffix;
    if (suffix.empty()) {
      // Replaced: a copy renamed over it has another inode.
      std::ifstream in(victim, std::ios::binary);
      std::ofstream(victim + ".copy", std::ios::binary) << in.rdbuf();
      ASSERT_EQ(std::rename((victim + ".copy").c_str(), victim.c_str()), 0);
    } else {
      ASSERT_EQ(std::remove(victim.c_str()), 0);
    }
    const StoredJob b = MakeJob("job-b", 2, v1::JOB_STATE_QUEUED);
    const absl::Status lost = (*store)->Commit({.jobs = {&b}});
    EXPECT_EQ(lost.code(), absl::StatusCode::kDataLoss) << suffix;
    EXPECT_NE(lost.message().find(victim + (suffix.empty() ? " was replaced" : " was removed")),
              std::string::npos)
        << lost;
    const StoredJob c = MakeJob("job-c", 3, v1::JOB_STATE_QUEUED);
    EXPECT_EQ((*store)->Commit({.jobs = {&c}}).code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ((*store)->Maintain().code(), absl::StatusCode::kDataLoss);
  }
}

}  // namespace
}  // namespace muppet::server
