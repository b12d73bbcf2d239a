#include "worker/nn/route.h"

#include <algorithm>
#include <vector>

#include "gtest/gtest.h"

namespace muppet {
namespace {

// A clock that only the runs advance: each route takes a fixed time, the first run of each more.
struct FakeRuns {
  double now = 0;
  double integer_seconds = 3, grid_seconds = 2, first_run_extra = 100;
  std::vector<FixedPointRoute> runs;
  int undos = 0;

  void Run(FixedPointRoute r) {
    const bool first = std::count(runs.begin(), runs.end(), r) == 0;
    runs.push_back(r);
    now += (r == FixedPointRoute::kGrid ? grid_seconds : integer_seconds) +
           (first ? first_run_extra : 0);
  }
};

TEST(RouteTableTest, AutoTimesBothAfterAWarmUpAndKeepsTheFaster) {
  FakeRuns fake;
  RouteTable table([&] { return fake.now; });
  std::vector<RouteChoice> log;
  const auto choose = [&](const Shape& shape) {
    return table.Choose(
        "conv", LayerPass::kForward, shape, 8, FixedPointRoute::kAuto,
        [&](FixedPointRoute r) { fake.Run(r); }, [&] { ++fake.undos; }, &log);
  };
  EXPECT_EQ(choose({4, 3, 8, 8}), FixedPointRoute::kGrid);
  EXPECT_EQ(fake.runs.size(), 6u);  // Warm-up, then two timed runs of each, alternating.
  EXPECT_EQ(fake.undos, 6);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_TRUE(log[0].measured);
  EXPECT_EQ(log[0].integer_seconds, 3);  // The warm-up's extra cost is not counted.
  EXPECT_EQ(log[0].grid_seconds, 2);
  EXPECT_EQ(log[0].shape, ShapeString({4, 3, 8, 8}));

  // Remembered: no more trials for the same pass, shape and width.
  EXPECT_EQ(choose({4, 3, 8, 8}), FixedPointRoute::kGrid);
  EXPECT_EQ(fake.runs.size(), 6u);
  EXPECT_EQ(log.size(), 1u);
  // A new shape is timed afresh.
  fake.grid_seconds = 5;
  EXPECT_EQ(choose({2, 3, 8, 8}), FixedPointRoute::kInteger);
  EXPECT_EQ(log.size(), 2u);
}

TEST(RouteTableTest, AForcedRouteRunsNothingToChoose) {
  FakeRuns fake;
  RouteTable table([&] { return fake.now; });
  std::vector<RouteChoice> log;
  for (FixedPointRoute forced : {FixedPointRoute::kInteger, FixedPointRoute::kGrid}) {
    EXPECT_EQ(table.Choose(
                  "fc",
                  forced == FixedPointRoute::kGrid ? LayerPass::kBackwardData
                                                   : LayerPass::kBackwardWeights,
                  {9, 20}, 16, forced, [&](FixedPointRoute r) { fake.Run(r); }, [] {}, &log),
              forced);
  }
  EXPECT_TRUE(fake.runs.empty());
  ASSERT_EQ(log.size(), 2u);
  EXPECT_FALSE(log[0].measured);
  EXPECT_EQ(log[1].route, FixedPointRoute::kGrid);
}

}  // namespace
}  // namespace muppet
