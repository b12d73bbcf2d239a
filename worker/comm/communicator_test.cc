#include "worker/comm/communicator.h"

#include <cstdlib>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "server/test_placement.h"
#include "worker/comm/coordinator_store.h"
#include "worker/comm/gloo_communicator.h"

namespace muppet::comm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Runs `body(rank, communicator)` on `size` ranks, one thread each, connected by Gloo through
// `store`; returns each rank's status.
std::vector<absl::Status> RunRanks(int size, Store& store,
                                   const std::function<absl::Status(Communicator&)>& body) {
  std::vector<absl::Status> results(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      absl::StatusOr<std::unique_ptr<Communicator>> comm =
          ConnectGloo({.rank = r, .size = size, .connect_timeout = absl::Seconds(20)}, store);
      results[r] = comm.ok() ? body(**comm) : comm.status();
    });
  }
  for (std::thread& t : threads) t.join();
  return results;
}

void ExpectAllOk(const std::vector<absl::Status>& results) {
  for (size_t r = 0; r < results.size(); ++r)
    EXPECT_TRUE(results[r].ok()) << r << ": " << results[r];
}

// Rank r's input: random values of its own stream.
template <typename T>
std::vector<T> Input(int rank, size_t n, int range) {
  std::mt19937 rng(1234 + rank);
  std::uniform_int_distribution<int> dist(-range, range);
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(dist(rng));
  return v;
}

template <typename T>
void CheckAllReduce(int size, size_t n, int range) {
  InProcessStore store;
  // The reference: int64 sums and maxima over every rank's input.
  std::vector<int64_t> sum(n, 0), max(n, std::numeric_limits<int64_t>::min());
  for (int r = 0; r < size; ++r) {
    const std::vector<T> in = Input<T>(r, n, range);
    for (size_t i = 0; i < n; ++i) {
      sum[i] += static_cast<int64_t>(in[i]);
      max[i] = std::max(max[i], static_cast<int64_t>(in[i]));
    }
  }
  ExpectAllOk(RunRanks(size, store, [&](Communicator& c) -> absl::Status {
    std::vector<T> s = Input<T>(c.rank(), n, range), m = s;
    if (absl::Status st = c.AllReduce(std::span<T>(s), ReduceOp::kSum, absl::Seconds(20));
        !st.ok()) {
      return st;
    }
    if (absl::Status st = c.AllReduce(std::span<T>(m), ReduceOp::kMax, absl::Seconds(20));
        !st.ok()) {
      return st;
    }
    for (size_t i = 0; i < n; ++i) {
      if (static_cast<int64_t>(s[i]) != sum[i] || static_cast<int64_t>(m[i]) != max[i]) {
        return absl::InternalError(absl::StrCat("rank ", c.rank(), " element ", i, ": sum ", s[i],
                                                " (want ", sum[i], "), max ", m[i], " (want ",
                                                max[i], ")"));
      }
    }
    return absl::OkStatus();
  }));
}

// Sizes that span several of Gloo's 1 MiB segments, and a prime count.
TEST(GlooTest, AllReduceSumsAndMaximaEqualTheInt64Reference) {
  CheckAllReduce<float>(3, 300001, 1000);  // Integers in float: every order sums exactly.
  CheckAllReduce<int16_t>(2, 70001, 16000);
  CheckAllReduce<int32_t>(3, 1 << 19, 1 << 20);
  CheckAllReduce<int64_t>(2, 4097, 1 << 30);
}

TEST(GlooTest, BroadcastCopiesTheRootsBytes) {
  InProcessStore store;
  ExpectAllOk(RunRanks(3, store, [](Communicator& c) -> absl::Status {
    std::vector<std::byte> data(100000, std::byte{static_cast<unsigned char>(c.rank())});
    if (absl::Status s = c.Broadcast(data, 1, absl::Seconds(20)); !s.ok()) return s;
    for (std::byte b : data) {
      if (b != std::byte{1}) return absl::InternalError(absl::StrCat("rank ", c.rank()));
    }
    return c.Broadcast(data, 3, absl::Seconds(1)).code() == absl::StatusCode::kInvalidArgument
               ? absl::OkStatus()
               : absl::InternalError("root 3 of 3 accepted");
  }));
}

TEST(GlooTest, AllGatherReturnsEveryRanksValueOfAnyLength) {
  InProcessStore store;
  ExpectAllOk(RunRanks(3, store, [](Communicator& c) -> absl::Status {
    absl::StatusOr<std::vector<std::string>> all =
        c.AllGather(std::string(c.rank() * 3, 'a' + c.rank()), absl::Seconds(20));
    if (!all.ok()) return all.status();
    EXPECT_THAT(*all, ElementsAre("", "bbb", "cccccc"));
    return c.Barrier(absl::Seconds(20));
  }));
}

TEST(GlooTest, AnOperationAPeerNeverJoinsTimesOut) {
  InProcessStore store;
  std::vector<absl::Status> results = RunRanks(2, store, [](Communicator& c) -> absl::Status {
    if (c.rank() == 1) {
      absl::SleepFor(absl::Seconds(2));  // Rank 1 joins no collective; it closes on return.
      return absl::OkStatus();
    }
    std::vector<float> x(10, 1.0f);
    const absl::Time start = absl::Now();
    absl::Status s = c.AllReduce(std::span<float>(x), ReduceOp::kSum, absl::Milliseconds(300));
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_THAT(s.message(), HasSubstr("gloo allreduce (sum, float32) on rank 0 of 2"));
    EXPECT_LT(absl::Now() - start, absl::Seconds(2));
    // The pairs are broken now: later operations fail at once with the same error.
    EXPECT_EQ(c.Barrier(absl::Seconds(5)), s);
    return absl::OkStatus();
  });
  ExpectAllOk(results);
}

TEST(GlooTest, ALostPeerFailsTheOthersOperationQuickly) {
  InProcessStore store;
  std::vector<absl::Status> results = RunRanks(2, store, [](Communicator& c) -> absl::Status {
    if (c.rank() == 1) return absl::OkStatus();  // Leaves at once: its sockets close.
    absl::SleepFor(absl::Milliseconds(200));
    std::vector<float> x(1000, 1.0f);
    const absl::Time start = absl::Now();
    absl::Status s = c.AllReduce(std::span<float>(x), ReduceOp::kSum, absl::Seconds(30));
    EXPECT_FALSE(s.ok());
    EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << s;
    return absl::OkStatus();
  });
  ExpectAllOk(results);
}

TEST(GlooTest, RendezvousNamesARankOutOfRange) {
  InProcessStore store;
  absl::StatusOr<std::unique_ptr<Communicator>> c = ConnectGloo({.rank = 2, .size = 2}, store);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("rank 2"));
}

// The timed wait through the real coordinator: one rank of two connects, and rendezvous ends at
// its timeout with DEADLINE_EXCEEDED, where Gloo's own store base would wait for ever.
TEST(GlooTest, RendezvousThroughTheCoordinatorTimesOutWithoutThePeer) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  Logger log(stderr);
  auto server =
      server::CoordinatorServer::Start({.listen = "127.0.0.1:0",
                                        .metrics_listen = "",
                                        .db_path = absl::StrCat(tmp ? tmp : "/tmp", "/gloo.db")},
                                       &log);
  ASSERT_TRUE(server.ok()) << server.status();
  auto placed = server::PlaceTestJob((*server)->coordinator());
  ASSERT_TRUE(placed.ok()) << placed.status();
  CoordinatorStore coordinator(grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                                                   grpc::InsecureChannelCredentials()),
                               RetryPolicy{.give_up_after = absl::Seconds(5)}, placed->worker_id);
  PrefixStore job(placed->rendezvous_prefix + "attempt-1", &coordinator);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<Communicator>> alone =
      ConnectGloo({.rank = 0, .size = 2, .connect_timeout = absl::Seconds(1)}, job);
  EXPECT_EQ(alone.status().code(), absl::StatusCode::kDeadlineExceeded) << alone.status();
  EXPECT_EQ(alone.status().message(),
            "gloo rendezvous (rank 0 of 2): no address from rank 1 within 1s");
  EXPECT_LT(absl::Now() - start, absl::Seconds(8));

  // With both ranks, the same store connects them.
  PrefixStore next(placed->rendezvous_prefix + "attempt-2", &coordinator);
  ExpectAllOk(RunRanks(2, next, [](Communicator& c) { return c.Barrier(absl::Seconds(20)); }));
  (*server)->Shutdown(absl::Seconds(1));
}

// A backend that implements nothing but its identity.
class Bare final : public Communicator {
 public:
  absl::string_view backend() const override { return "bare"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
};

TEST(CommunicatorTest, AMissingOperationNamesTheBackend) {
  Bare bare;
  std::vector<int32_t> x(4);
  absl::Status s = bare.AllReduce(std::span<int32_t>(x), ReduceOp::kMax, absl::Seconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(s.message(), "bare backend does not support allreduce (max, int32)");
  EXPECT_THAT(bare.AllGather("x", absl::Seconds(1)).status().message(),
              HasSubstr("bare backend does not support allgather"));
  EXPECT_THAT(bare.Barrier(absl::Seconds(1)).message(), HasSubstr("barrier"));
}

TEST(CommunicatorTest, SoloIsTheIdentity) {
  SoloCommunicator solo;
  std::vector<float> x = {1.5f, -2.0f};
  ASSERT_TRUE(solo.AllReduce(std::span<float>(x), ReduceOp::kSum, absl::Seconds(1)).ok());
  EXPECT_THAT(x, ElementsAre(1.5f, -2.0f));
  EXPECT_THAT(*solo.AllGather("me", absl::Seconds(1)), ElementsAre("me"));
  EXPECT_EQ(solo.Broadcast({}, 1, absl::Seconds(1)).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace muppet::comm
