#include "server/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

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

TEST(StoreTest, ReopenFindsJobsEventsWorkersAndPolicyState) {
  const std::string path = TempPath("reopen.db");
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

TEST(StoreTest, AFailedCommitWritesNothing) {
  auto store = Store::Open(TempPath("atomic.db"), Durability::kProcessCrash);
  ASSERT_TRUE(store.ok());
  const StoredJob a = MakeJob("job-a", 1, v1::JOB_STATE_QUEUED);
  const v1::JobEvent e1 = MakeEvent("job-a", 1);
  ASSERT_TRUE((*store)->Commit({.jobs = {&a}, .events = {&e1}}).ok());
  // A duplicate event sequence fails the transaction, and the job in it is not written either.
  const StoredJob b = MakeJob("job-b", 2, v1::JOB_STATE_QUEUED);
  EXPECT_FALSE((*store)->Commit({.jobs = {&b}, .events = {&e1}}).ok());
  EXPECT_EQ((*store)->LoadJobs()->jobs.size(), 1u);
}

TEST(StoreTest, MigratesAVersionOneDatabase) {
  const std::string path = TempPath("v1.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, kMigrations[0], nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=1", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::Open(path, Durability::kProcessCrash);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->SchemaVersion(), Store::kSchemaVersion);
}

TEST(StoreTest, RejectsANewerSchemaNamingTheFile) {
  const std::string path = TempPath("newer.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::Open(path, Durability::kProcessCrash);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(path), std::string::npos);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos);
}

TEST(StoreTest, RejectsAFileThatIsNotAMuppetDatabase) {
  const std::string text = TempPath("text.db");
  std::ofstream(text) << "these are not the bytes of an SQLite database, but a long line of text";
  auto store = Store::Open(text, Durability::kProcessCrash);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a muppet database"), std::string::npos)
      << store.status();

  const std::string other = TempPath("other.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  store = Store::Open(other, Durability::kProcessCrash);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a muppet database"), std::string::npos);
}

TEST(StoreTest, ACorruptRecordIsReportedNamingTheJobAndTheRestLoad) {
  const std::string path = TempPath("corrupt.db");
  {
    auto store = Store::Open(path, Durability::kProcessCrash);
    const StoredJob a = MakeJob("job-a", 1, v1::JOB_STATE_QUEUED);
    const StoredJob b = MakeJob("job-b", 2, v1::JOB_STATE_QUEUED);
    ASSERT_TRUE((*store)->Commit({.jobs = {&a, &b}}).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE jobs SET record = x'ffffffff' WHERE id = 'job-a'", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::Open(path, Durability::kProcessCrash);
  ASSERT_TRUE(store.ok());
  auto loaded = (*store)->LoadJobs();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->jobs.size(), 1u);
  EXPECT_EQ(loaded->jobs[0].record.job().id(), "job-b");
  ASSERT_EQ(loaded->damaged.size(), 1u);
  EXPECT_EQ(loaded->damaged[0].id, "job-a");
  EXPECT_EQ(loaded->damaged[0].submit_sequence, 1u);
  EXPECT_NE(loaded->damaged[0].error.find(path + ": the record of job job-a is corrupt"),
            std::string::npos);
}

// Deleting the write-ahead log (or replacing the database) under a running store would let
// commits be acknowledged into a file nobody reads again: the first commit after it fails, and
// so does every later one.
TEST(StoreTest, ARemovedOrReplacedFileStopsAcknowledgingCommits) {
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
    EXPECT_EQ((*store)->Checkpoint().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(StoreTest, ASecondOpenOfTheSameDatabaseIsRefusedNamingTheHolder) {
  const std::string path = TempPath("exclusive.db");
  {
    auto first = Store::Open(path, Durability::kProcessCrash);
    ASSERT_TRUE(first.ok()) << first.status();
    auto second = Store::Open(path, Durability::kProcessCrash);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
    const std::string message(second.status().message());
    EXPECT_NE(message.find(path + ": in use by another coordinator (pid " +
                           std::to_string(getpid()) + " on "),
              std::string::npos)
        << message;
  }
  // Released with the store (and by the kernel if the process dies).
  EXPECT_TRUE(Store::Open(path, Durability::kProcessCrash).ok());
}

}  // namespace
}  // namespace muppet::server
