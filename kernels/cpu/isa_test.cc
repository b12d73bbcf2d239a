#include "kernels/cpu/isa.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace muppet::kernels {
namespace {

TEST(IsaTest, ParsesNamesAndRefusesWhatTheCpuLacks) {
  EXPECT_EQ(*ParseIsa("scalar"), Isa::kScalar);
  EXPECT_EQ(*ParseIsa(IsaName(DetectIsa())), DetectIsa());
  EXPECT_EQ(ParseIsa("sse9").status().message(),
            "ISA must be one of scalar, avx2, avx512, got \"sse9\"");
  if (DetectIsa() != Isa::kAvx512) {
    EXPECT_FALSE(ParseIsa("avx512").ok());
  }
}

TEST(IsaTest, EnvironmentCapsTheActiveIsa) {
  // The only ActiveIsa() call in this binary, so the environment is read here.
  setenv("MUPPET_ISA", "scalar", 1);
  EXPECT_EQ(ActiveIsa(), Isa::kScalar);
}

}  // namespace
}  // namespace muppet::kernels
