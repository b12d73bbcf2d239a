#include "base/crc32c.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace muppet {
namespace {

// RFC 3720, appendix B.4, and the customary check value.
TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32cTest, HardwareAndTableAgreeAndExtend) {
  std::mt19937_64 rng(7);
  for (size_t n : {1u, 7u, 8u, 9u, 63u, 1000u, 4099u}) {
    std::string data(n, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    EXPECT_EQ(Crc32c(data), internal::Crc32cPortable(data, 0)) << n;
    const size_t cut = n / 3;
    EXPECT_EQ(Crc32c(data.substr(cut), Crc32c(data.substr(0, cut))), Crc32c(data)) << n;
  }
}

TEST(Crc32cTest, EveryFlippedBitChangesIt) {
  std::string data = "muppet checkpoint section";
  const uint32_t clean = Crc32c(data);
  for (size_t i = 0; i < data.size() * 8; ++i) {
    data[i / 8] ^= static_cast<char>(1 << (i % 8));
    EXPECT_NE(Crc32c(data), clean) << "bit " << i;
    data[i / 8] ^= static_cast<char>(1 << (i % 8));
  }
}

}  // namespace
}  // namespace muppet
