#include "worker/comm/fixed_point_allreduce.h"

#include <cmath>
#include <limits>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/comm/gloo_communicator.h"

namespace muppet::comm {
namespace {

using ::testing::HasSubstr;

constexpr int kRanks = 3;
const std::vector<size_t> kSizes = {1000, 1, 33333, 0, 4096};  // An empty tensor too.

// Rank r's tensor t: normal values at a scale of its own, so that ranks' ranges differ.
std::vector<float> Gradient(int rank, size_t t, size_t n) {
  std::mt19937 rng(100 * rank + t);
  std::normal_distribution<float> dist(0.0f, std::ldexp(1.0f, -3 - rank - static_cast<int>(t)));
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// The reference: the shared exponent from every rank's range, each rank's codes from the
// quantiser with the same streams, and their sum in int64.
std::vector<std::vector<double>> Reference(const FixedPointAllReduceOptions& o) {
  std::vector<std::vector<double>> out;
  for (size_t t = 0; t < kSizes.size(); ++t) {
    kernels::Range range{};
    for (int r = 0; r < kRanks; ++r) {
      for (float x : Gradient(r, t, kSizes[t])) {
        range.min = std::min(range.min, x);
        range.max = std::max(range.max, x);
      }
    }
    const int exponent = kernels::ScaleExponent(range, o.bits);
    std::vector<int64_t> sum(kSizes[t], 0);
    for (int r = 0; r < kRanks; ++r) {
      std::vector<int16_t> codes(kSizes[t]);
      kernels::Quantize(Gradient(r, t, kSizes[t]),
                        {.word_length = o.bits,
                         .exponent = exponent,
                         .rounding = o.rounding,
                         .seed = CounterHash(o.seed, r),
                         .stream = CounterHash(o.stream, t)},
                        codes);
      for (size_t i = 0; i < codes.size(); ++i) sum[i] += codes[i];
    }
    std::vector<double> values(kSizes[t]);
    for (size_t i = 0; i < sum.size(); ++i)
      values[i] = std::ldexp(static_cast<double>(sum[i]), -exponent);
    out.push_back(std::move(values));
  }
  return out;
}

class FixedPointAllReduceTest : public ::testing::TestWithParam<int> {};

TEST_P(FixedPointAllReduceTest, EqualsTheInt64SumOfEveryRanksCodes) {
  const FixedPointAllReduceOptions options{.bits = GetParam(), .seed = 7, .stream = 42};
  const std::vector<std::vector<double>> want = Reference(options);
  InProcessStore store;
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      absl::StatusOr<std::unique_ptr<Communicator>> comm =
          ConnectGloo({.rank = r, .size = kRanks, .connect_timeout = absl::Seconds(20)}, store);
      ASSERT_TRUE(comm.ok()) << comm.status();
      std::vector<std::vector<float>> grads;
      for (size_t t = 0; t < kSizes.size(); ++t) grads.push_back(Gradient(r, t, kSizes[t]));
      std::vector<std::span<float>> spans(grads.begin(), grads.end());
      FixedPointAllReducer reducer;
      absl::StatusOr<FixedPointAllReduceStats> stats = reducer.Run(**comm, spans, options);
      ASSERT_TRUE(stats.ok()) << stats.status();
      size_t total = 0;
      for (size_t n : kSizes) total += n;
      EXPECT_EQ(stats->wire_bytes, total * SizeOf(CodeWireType(options.bits, kRanks)));
      for (size_t t = 0; t < kSizes.size(); ++t) {
        for (size_t i = 0; i < kSizes[t]; ++i) {
          // The float result is the exact sum rounded once (exact below 2^24 in magnitude).
          ASSERT_EQ(grads[t][i], static_cast<float>(want[t][i]))
              << "rank " << r << " tensor " << t << " element " << i;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

INSTANTIATE_TEST_SUITE_P(Bits, FixedPointAllReduceTest, ::testing::Values(8, 12, 14, 16));

TEST(CodeWireTypeTest, Int16WhileTheSumOfNCodesFitsThenInt32) {
  EXPECT_EQ(CodeWireType(8, 2), DataType::kInt16);
  EXPECT_EQ(CodeWireType(8, 256), DataType::kInt16);
  EXPECT_EQ(CodeWireType(8, 257), DataType::kInt32);
  EXPECT_EQ(CodeWireType(12, 16), DataType::kInt16);
  EXPECT_EQ(CodeWireType(12, 17), DataType::kInt32);
  EXPECT_EQ(CodeWireType(16, 1), DataType::kInt16);
  EXPECT_EQ(CodeWireType(16, 2), DataType::kInt32);
  EXPECT_EQ(CodeWireType(16, kMaxFixedPointRanks), DataType::kInt32);
}

// Stands in for `ranks` ranks that all hold this rank's values: a sum multiplies by the rank
// count, and fails if the result leaves the wire type (which a real ring would wrap).
class Replicated final : public Communicator {
 public:
  explicit Replicated(int ranks) : ranks_(ranks) {}
  absl::string_view backend() const override { return "replicated"; }
  int rank() const override { return 0; }
  int size() const override { return ranks_; }
  absl::Status AllReduceBuffer(void* data, size_t count, DataType type, ReduceOp op,
                               absl::Duration) override {
    if (op == ReduceOp::kMax) return absl::OkStatus();
    if (type == DataType::kInt16) return Scale(static_cast<int16_t*>(data), count);
    if (type == DataType::kInt32) return Scale(static_cast<int32_t*>(data), count);
    return absl::UnimplementedError(Name(type));
  }

 private:
  template <typename T>
  absl::Status Scale(T* x, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const int64_t sum = static_cast<int64_t>(x[i]) * ranks_;
      if (sum < std::numeric_limits<T>::min() || sum > std::numeric_limits<T>::max()) {
        return absl::OutOfRangeError(absl::StrCat("sum ", sum, " overflows"));
      }
      x[i] = static_cast<T>(sum);
    }
    return absl::OkStatus();
  }
  int ranks_;
};

// The extreme codes of both signs, at the largest world each wire type serves.
TEST(FixedPointAllReduceBoundsTest, ExtremeCodesSumWithoutOverflowAtTheLargestWorlds) {
  for (const auto& [bits, ranks] :
       {std::pair{8, 256}, {8, 257}, {12, 16}, {16, kMaxFixedPointRanks}}) {
    // max and min on the grid at their own exponent: codes 2^(b-1) - 1 and -2^(b-1).
    const float top = static_cast<float>((1 << (bits - 1)) - 1),
                bottom = -static_cast<float>(1 << (bits - 1));
    std::vector<float> x = {top, bottom, top, bottom};
    std::span<float> spans[] = {std::span<float>(x)};
    Replicated comm(ranks);
    FixedPointAllReducer reducer;
    absl::StatusOr<FixedPointAllReduceStats> stats =
        reducer.Run(comm, spans, {.bits = bits, .rounding = kernels::Rounding::kNearest});
    ASSERT_TRUE(stats.ok()) << bits << " bits, " << ranks << " ranks: " << stats.status();
    EXPECT_EQ(reducer.exponents()[0], 0);
    EXPECT_EQ(x[0], static_cast<double>(top) * ranks) << bits << " bits, " << ranks << " ranks";
    EXPECT_EQ(x[1], static_cast<double>(bottom) * ranks) << bits << " bits, " << ranks << " ranks";
  }
}

TEST(FixedPointAllReduceBoundsTest, RefusesBadBitsTooManyRanksAndNaN) {
  std::vector<float> x = {1, std::nanf(""), 3};
  std::span<float> spans[] = {std::span<float>(x)};
  FixedPointAllReducer reducer;
  Replicated two(2), huge(kMaxFixedPointRanks + 1);
  EXPECT_THAT(reducer.Run(two, spans, {.bits = 17}).status().message(), HasSubstr("bits"));
  EXPECT_THAT(reducer.Run(huge, spans, {.bits = 8}).status().message(), HasSubstr("65537 ranks"));
  absl::StatusOr<FixedPointAllReduceStats> nan = reducer.Run(two, spans, {.bits = 8});
  EXPECT_EQ(nan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.status().message(), HasSubstr("tensor 0"));
}

}  // namespace
}  // namespace muppet::comm
