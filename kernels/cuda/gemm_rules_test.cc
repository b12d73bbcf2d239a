// The tensor-core GEMMs' shape rules and K chunks, on the host.
#include "kernels/cuda/gemm_rules.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muppet::cuda {
namespace {

using ::testing::HasSubstr;

TEST(CheckTensorCoreGemmTest, NamesTheFirstBrokenRule) {
  alignas(16) static int8_t buffer[64];
  EXPECT_TRUE(CheckTensorCoreGemm({.m = 4, .n = 8, .k = 12}, buffer, buffer, buffer).ok());
  EXPECT_THAT(
      std::string(CheckTensorCoreGemm({.m = 4, .n = 6, .k = 12}, buffer, buffer, buffer).message()),
      HasSubstr("n: tensor-core GEMMs need a positive multiple of 4, got 6"));
  EXPECT_THAT(
      std::string(CheckTensorCoreGemm({.m = 0, .n = 4, .k = 4}, buffer, buffer, buffer).message()),
      HasSubstr("m:"));
  EXPECT_THAT(
      std::string(
          CheckTensorCoreGemm({.m = 4, .n = 4, .k = 4}, buffer, buffer + 4, buffer).message()),
      HasSubstr("b: must be 16-byte aligned"));
}

TEST(ExactKChunksTest, NoChunkCanOverflowInt32) {
  // int8 x int8: |product| <= 2^14, so 131071 terms fit; MaxExactK is a multiple of 4.
  EXPECT_EQ(MaxExactK(8, 8), 131068);
  EXPECT_EQ(ExactKChunks(4608, 8, 8), (std::vector<std::pair<int64_t, int64_t>>{{0, 4608}}));
  // Chunks of 131056 = 16 x 8191 terms: the next chunk's first code stays 16-byte aligned.
  EXPECT_EQ(ExactKChunks(300000, 8, 8), (std::vector<std::pair<int64_t, int64_t>>{
                                            {0, 131056}, {131056, 262112}, {262112, 300000}}));
  // The worst case of a chunk stays within int32.
  const int64_t k = MaxExactK(8, 8);
  EXPECT_LE(k * 128 * 128, int64_t{INT32_MAX});
  EXPECT_GT((k + 4) * 128 * 128, int64_t{INT32_MAX});
}

}  // namespace
}  // namespace muppet::cuda
