#include "worker/tensor/tensor.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace muppet {
namespace {

TEST(TensorTest, ZeroFilledAndAligned) {
  Tensor t({2, 3, 4, 5});
  EXPECT_EQ(t.size(), 120);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  for (float v : t.span()) EXPECT_EQ(v, 0.0f);
}

TEST(TensorTest, ChannelsLastOffsets) {
  Tensor t({2, 3, 4, 5});  // N, C, H, W.
  EXPECT_EQ(t.Offset(0, 0, 0, 0), 0);
  EXPECT_EQ(t.Offset(0, 1, 0, 0), 1);   // Channels are innermost.
  EXPECT_EQ(t.Offset(0, 0, 0, 1), 3);   // Then width.
  EXPECT_EQ(t.Offset(0, 0, 1, 0), 15);  // Then height.
  EXPECT_EQ(t.Offset(1, 0, 0, 0), 60);
}

TEST(TensorTest, ResizeReusesMemoryWhenItFits) {
  Tensor t({4, 4});
  const float* before = t.data();
  t.Resize({2, 8});
  EXPECT_EQ(t.data(), before);
  t.Resize({3});
  EXPECT_EQ(t.data(), before);
  EXPECT_EQ(t.shape(), (Shape{3}));
  t.Resize({100});
  EXPECT_EQ(t.size(), 100);
}

TEST(TensorTest, CloneIsDeep) {
  Tensor a({3});
  a[1] = 2.5f;
  Tensor b = a.Clone();
  b[1] = 1.0f;
  EXPECT_EQ(a[1], 2.5f);
  EXPECT_EQ(b.shape(), a.shape());
}

TEST(TensorTest, ShapeString) { EXPECT_EQ(ShapeString({2, 3}), "[2, 3]"); }

}  // namespace
}  // namespace muppet
