#include "common/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace sparsepool {
namespace {

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  const std::string check = "123456789";
  EXPECT_EQ(Crc32c(check.data(), check.size()), 0xE3069283u);
}

TEST(Crc32cTest, ExtendingEqualsOneShot) {
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
  for (size_t split : {0, 1, 7, 8, 9, 500, 999, 1000}) {
    const uint32_t first = Crc32c(data.data(), split);
    EXPECT_EQ(Crc32c(data.data() + split, data.size() - split, first), Crc32c(data.data(), data.size()))
        << "split at " << split;
  }
}

TEST(Crc32cTest, EveryBitFlipChangesTheChecksum) {
  std::string data(96, 'x');
  const uint32_t clean = Crc32c(data.data(), data.size());
  for (size_t bit = 0; bit < data.size() * 8; ++bit) {
    std::string flipped = data;
    flipped[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    EXPECT_NE(Crc32c(flipped.data(), flipped.size()), clean) << "bit " << bit;
  }
}

}  // namespace
}  // namespace sparsepool
