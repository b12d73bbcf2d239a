#include "base/rpc.h"

#include <atomic>

#include "gtest/gtest.h"

namespace muppet {
namespace {

TEST(RpcTest, StatusesCrossTheWireWithTheirCodeAndMessage) {
  const absl::Status s = absl::NotFoundError("job job-1: no such job");
  const grpc::Status g = ToGrpc(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(g.error_message(), "job job-1: no such job");
  EXPECT_EQ(FromGrpc(g), s);
  EXPECT_TRUE(ToGrpc(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpc(grpc::Status::OK).ok());
}

TEST(RpcTest, BackoffDoublesUpToItsCapAndResets) {
  Backoff b(absl::Milliseconds(250), absl::Seconds(1));
  EXPECT_EQ(b.Next(), absl::Milliseconds(250));
  EXPECT_EQ(b.Next(), absl::Milliseconds(500));
  EXPECT_EQ(b.Next(), absl::Seconds(1));
  EXPECT_EQ(b.Next(), absl::Seconds(1));
  b.Reset();
  EXPECT_EQ(b.current(), absl::Milliseconds(250));
}

TEST(RpcTest, CallWithRetryRetriesOnlyTransientFailures) {
  const RetryPolicy policy{.initial_backoff = absl::Microseconds(1),
                           .max_backoff = absl::Microseconds(4)};
  int calls = 0;
  EXPECT_TRUE(CallWithRetry(policy, nullptr, [&] {
                return ++calls < 3 ? absl::UnavailableError("restarting") : absl::OkStatus();
              }).ok());
  EXPECT_EQ(calls, 3);
  calls = 0;
  EXPECT_EQ(CallWithRetry(policy, nullptr,
                          [&] {
                            ++calls;
                            return absl::InvalidArgumentError("spec.epochs: must be positive");
                          })
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 1);
}

TEST(RpcTest, CallWithRetryStopsWhenAsked) {
  const std::atomic<bool> stop{true};
  const absl::Status s =
      CallWithRetry({}, &stop, [] { return absl::UnavailableError("coordinator down"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
}

TEST(RpcTest, ContextCarriesTheBearerToken) {
  // The deadline is observable; metadata is write-only on a client context, so the token is
  // checked end to end by the server tests (UNAUTHENTICATED without it).
  const auto ctx = CallContext("secret", absl::Seconds(5));
  EXPECT_LT(ctx->deadline(), std::chrono::system_clock::now() + std::chrono::seconds(6));
  const auto stream = CallContext("", std::nullopt);
  EXPECT_EQ(stream->deadline(), std::chrono::system_clock::time_point::max());
}

}  // namespace
}  // namespace muppet
