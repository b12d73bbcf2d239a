#include "kernels/cuda/lazy_library.h"

#include <cmath>
#include <string>

#include "gtest/gtest.h"

namespace muppet::cuda {
namespace {

TEST(LazyLibraryTest, ResolvesSymbolsOfALibraryThatIsThere) {
  LazyLibrary libm("libm.so.6");
  auto* cosine = reinterpret_cast<double (*)(double)>(libm.Symbol("cos"));
  ASSERT_NE(cosine, nullptr);
  EXPECT_EQ(cosine(0.0), 1.0);
  EXPECT_EQ(libm.Symbol("no_such_function_in_libm"), nullptr);
  const absl::Status missing = libm.Missing("no_such_function_in_libm");
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.message().find("no_such_function_in_libm"), std::string::npos) << missing;
}

TEST(LazyLibraryTest, AMissingLibraryIsNamedNotFatal) {
  LazyLibrary absent("libmuppet_absent_for_test.so.1");
  EXPECT_EQ(absent.Symbol("anything"), nullptr);
  EXPECT_EQ(absent.Symbol("anything_else"), nullptr);  // Opened once, still absent.
  const absl::Status missing = absent.Missing("cudnnCreate");
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.message().find("libmuppet_absent_for_test.so.1"), std::string::npos);
  EXPECT_NE(missing.message().find("cudnnCreate"), std::string::npos);
  EXPECT_NE(missing.message().find("cannot open shared object file"), std::string::npos) << missing;
}

}  // namespace
}  // namespace muppet::cuda
