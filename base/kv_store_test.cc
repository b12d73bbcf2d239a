#include "base/kv_store.h"

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet {
namespace {

using ::testing::HasSubstr;

TEST(KeyValueStoreTest, AQuotaBoundsKeysAndBytesUnderItsScope) {
  KeyValueStore store;
  const KeyValueStore::Quota quota{.scope = "jobs/a/1/", .max_keys = 3, .max_bytes = 100};
  ASSERT_TRUE(store.Set("jobs/a/1/x", std::string(40, 'v'), &quota).ok());  // 50 bytes.
  ASSERT_TRUE(store.Set("jobs/a/1/y", std::string(30, 'v'), &quota).ok());  // 90.
  // Another scope, and writes without a quota, count for nothing here.
  ASSERT_TRUE(store.Set("jobs/a/2/x", std::string(1000, 'v')).ok());
  absl::Status s = store.Set("jobs/a/1/z", std::string(11, 'v'), &quota);  // 111 > 100.
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("rendezvous quota of jobs/a/1/: at most 3 keys and 100 "
                                     "bytes, and this write would make 3 keys and 111 bytes"));
  // Replacing a key counts its new value only.
  EXPECT_TRUE(store.Set("jobs/a/1/x", std::string(50, 'v'), &quota).ok());  // 60 + 40 = 100.
  EXPECT_EQ(store.Set("jobs/a/1/x", std::string(51, 'v'), &quota).code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(store.Set("jobs/a/1/x", "", &quota).ok());
  EXPECT_TRUE(store.Add("jobs/a/1/n", 1, &quota).ok());  // The third key.
  s = store.Add("jobs/a/1/m", 1, &quota).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("would make 4 keys"));
}

TEST(KeyValueStoreTest, AddRefusesToLeaveTheInt64Range) {
  KeyValueStore store;
  ASSERT_EQ(*store.Add("n", INT64_MAX), INT64_MAX);
  const absl::Status up = store.Add("n", 1).status();
  EXPECT_EQ(up.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(up.message(), HasSubstr("adding 1 to 9223372036854775807 leaves the 64-bit range"));
  EXPECT_EQ(*store.Add("n", -1), INT64_MAX - 1);  // The value stayed.
  ASSERT_EQ(*store.Add("m", INT64_MIN), INT64_MIN);
  EXPECT_EQ(store.Add("m", -1).status().code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace muppet
