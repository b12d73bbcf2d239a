#include "worker/comm/store.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "server/test_placement.h"
#include "worker/comm/coordinator_store.h"

namespace muppet::comm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

enum class Kind { kInProcess, kPrefix, kCoordinator };

// Each kind of store, the coordinator's against a real muppetd serving on 127.0.0.1.
class StoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    switch (GetParam()) {
      case Kind::kInProcess:
        store_ = std::make_unique<InProcessStore>();
        return;
      case Kind::kPrefix:
        store_ = std::make_unique<PrefixStore>("job-1", &base_);
        return;
      case Kind::kCoordinator: {
        const char* tmp = std::getenv("TEST_TMPDIR");
        server::ServerOptions options{.listen = "127.0.0.1:0",
                                      .metrics_listen = "",
                                      .db_path = absl::StrCat(tmp ? tmp : "/tmp", "/store.db")};
        // A fresh store each test: one test's placement must not hold the next one's worker.
        for (const char* suffix : {"", "-wal", "-shm"}) {
          std::remove((options.db_path + suffix).c_str());
        }
        auto server = server::CoordinatorServer::Start(options, &log_);
        ASSERT_TRUE(server.ok()) << server.status();
        server_ = *std::move(server);
        // Rendezvous keys lie under a placement of the calling worker.
        auto placed = server::PlaceTestJob(server_->coordinator());
        ASSERT_TRUE(placed.ok()) << placed.status();
        coordinator_ = std::make_unique<CoordinatorStore>(
            grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                grpc::InsecureChannelCredentials()),
            RetryPolicy{.give_up_after = absl::Seconds(5)}, placed->worker_id);
        store_ = std::make_unique<PrefixStore>(
            std::string(absl::StripSuffix(placed->rendezvous_prefix, "/")), coordinator_.get());
        return;
      }
    }
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  Logger log_{stderr};
  InProcessStore base_;
  std::unique_ptr<server::CoordinatorServer> server_;
  std::unique_ptr<CoordinatorStore> coordinator_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreTest, SetThenGetReturnsValuesInKeyOrder) {
  ASSERT_TRUE(store_->Set("b", "2").ok());
  ASSERT_TRUE(store_->Set("a", "1").ok());
  ASSERT_TRUE(store_->Set("a", "one").ok());  // Replaces.
  absl::StatusOr<std::vector<std::string>> got = store_->Get({"a", "b"}, absl::Seconds(1));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre("one", "2"));
}

TEST_P(StoreTest, GetWaitsForAKeySetLater) {
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_TRUE(store_->Set("late", "here").ok());
  });
  absl::StatusOr<std::vector<std::string>> got = store_->Get({"late"}, absl::Seconds(10));
  setter.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre("here"));
}

TEST_P(StoreTest, GetTimesOutNamingTheMissingKeys) {
  ASSERT_TRUE(store_->Set("rank/0", "addr0").ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<std::string>> got =
      store_->Get({"rank/0", "rank/1"}, absl::Milliseconds(200));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(got.status().message(), HasSubstr("rank/1"));
  EXPECT_THAT(got.status().message(), ::testing::Not(HasSubstr("rank/0")));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_P(StoreTest, AddIsAtomicAcrossThreads) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) ASSERT_TRUE(store_->Add("count", 2).ok());
    });
  }
  for (std::thread& t : threads) t.join();
  absl::StatusOr<int64_t> value = store_->Add("count", 0);
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 200);
  ASSERT_TRUE(store_->Set("word", "hello").ok());
  EXPECT_EQ(store_->Add("word", 1).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(StoreTest, DeletePrefixDeletesOnlyThatPrefix) {
  for (const char* key : {"job-a/0", "job-a/1", "job-b/0"}) ASSERT_TRUE(store_->Set(key, "x").ok());
  absl::StatusOr<uint64_t> deleted = store_->DeletePrefix("job-a/");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2u);
  EXPECT_TRUE(store_->Get({"job-b/0"}, absl::Seconds(1)).ok());
  EXPECT_EQ(store_->Get({"job-a/0"}, absl::Milliseconds(10)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(store_->DeletePrefix("").status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(EveryStore, StoreTest,
                         ::testing::Values(Kind::kInProcess, Kind::kPrefix, Kind::kCoordinator),
                         [](const auto& info) {
                           switch (info.param) {
                             case Kind::kInProcess:
                               return "InProcess";
                             case Kind::kPrefix:
                               return "Prefix";
                             case Kind::kCoordinator:
                               return "Coordinator";
                           }
                           return "";
                         });

TEST(PrefixStoreTest, PrefixesKeepJobsApart) {
  InProcessStore base;
  PrefixStore a("job-a", &base), b("job-b", &base);
  ASSERT_TRUE(a.Set("rank/0", "a0").ok());
  ASSERT_TRUE(b.Set("rank/0", "b0").ok());
  EXPECT_THAT(*a.Get({"rank/0"}, absl::Seconds(1)), ElementsAre("a0"));
  EXPECT_THAT(*base.Get({"job-b/rank/0"}, absl::Seconds(1)), ElementsAre("b0"));
  EXPECT_EQ(*b.DeletePrefix("rank/"), 1u);
  EXPECT_TRUE(a.Get({"rank/0"}, absl::Seconds(1)).ok());
}

}  // namespace
}  // namespace muppet::comm
