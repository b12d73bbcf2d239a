// Where the CUDA toolkit is installed (CI, GPU machines), cuDNN opens at first use and its
// functions are reached through the lazily resolved pointers; no GPU is needed for that.
#include <string>

#include "gtest/gtest.h"
#include "kernels/cuda/cudnn.h"

namespace muppet::cuda {
namespace {

TEST(CudnnLibraryTest, OpensAndCallsThroughTheResolvedFunctions) {
  const auto version = MUPPET_LAZY_FUNCTION(CudnnLibrary(), cudnnGetVersion);
  ASSERT_NE(version, nullptr) << CudnnLibrary().Missing("cudnnGetVersion");
  EXPECT_GE(version(), 90000u);  // cuDNN 9.
  const absl::Status error = CudnnToStatus(CUDNN_STATUS_BAD_PARAM, "cudnnSomething", "f.cc", 3);
  EXPECT_EQ(error.code(), absl::StatusCode::kInternal);
  EXPECT_NE(error.message().find("cudnnSomething failed: CUDNN_STATUS_BAD_PARAM"),
            std::string::npos)
      << error;
}

}  // namespace
}  // namespace muppet::cuda
