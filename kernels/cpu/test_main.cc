// The main() of the kernel, layer and training tests: says which ISA this run exercises (the
// forced-AVX2 twin of each test runs with MUPPET_ISA=avx2 and ONEDNN_MAX_CPU_ISA=AVX2), then
// runs GoogleTest.
#include <cstdio>

#include "gtest/gtest.h"
#include "kernels/cpu/platform.h"

int main(int argc, char** argv) {
  std::printf(
      "kernel platform: %s\n",
      muppet::kernels::DescribeKernelPlatform(muppet::kernels::DetectKernelPlatform()).c_str());
  std::fflush(stdout);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
