#include "common/region_format.h"

#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace sparsepool::region_format {
namespace {

constexpr std::array<uint8_t, 16> kUuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

TEST(RegionFormatTest, HeaderRoundTripsAndValidates) {
  auto header = MakeHeader(64 << 20, 128, kUuid, 1234);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_TRUE(ValidateHeader(*header, 64 << 20, "r").ok());
  EXPECT_EQ(header->heap_offset % kGranuleBytes, 0u);
  EXPECT_EQ(header->record_table_offset + 128 * 2 * sizeof(SequenceRecord), header->heap_offset);
  EXPECT_EQ(header->heap_offset + header->heap_granules * kGranuleBytes, uint64_t{64} << 20);
}

TEST(RegionFormatTest, EveryCorruptedHeaderByteIsRefused) {
  auto header = MakeHeader(64 << 20, 128, kUuid, 1234);
  ASSERT_TRUE(header.ok());
  for (size_t byte = 0; byte < sizeof(RegionHeader) - sizeof(uint32_t); ++byte) {
    RegionHeader bad = *header;
    reinterpret_cast<uint8_t*>(&bad)[byte] ^= 0x10;
    EXPECT_FALSE(ValidateHeader(bad, 64 << 20, "r").ok()) << "byte " << byte;
  }
}

TEST(RegionFormatTest, ErrorsSayWhatIsWrong) {
  auto header = MakeHeader(64 << 20, 128, kUuid, 1234);
  ASSERT_TRUE(header.ok());
  RegionHeader bad = *header;
  bad.magic[0] = 'X';
  absl::Status s = ValidateHeader(bad, 64 << 20, "/dev/shm/x");
  EXPECT_TRUE(absl::StrContains(s.message(), "does not hold a sparsepool region")) << s;
  bad = *header;
  bad.heap_granules += 1;
  s = ValidateHeader(bad, 64 << 20, "/dev/shm/x");
  EXPECT_TRUE(absl::IsDataLoss(s));
  EXPECT_TRUE(absl::StrContains(s.message(), "corrupted")) << s;
  s = ValidateHeader(*header, 32 << 20, "/dev/shm/x");
  EXPECT_TRUE(absl::StrContains(s.message(), "mapped")) << s;
}

TEST(RegionFormatTest, TooSmallRegionsAreRejected) {
  EXPECT_FALSE(MakeHeader(8192, 128, kUuid, 0).ok());
  EXPECT_FALSE(MakeHeader(64 << 20, 0, kUuid, 0).ok());
}

TEST(RegionFormatTest, RecordsAreSealedAndChecked) {
  SequenceRecord record;
  std::memset(&record, 0, sizeof(record));
  EXPECT_FALSE(RecordIsIntact(record));  // never written
  record.generation = 3;
  record.sequence_id = 42;
  SetName("tenant-a", record.tenant);
  SealRecord(record);
  EXPECT_TRUE(RecordIsIntact(record));
  EXPECT_EQ(GetName(record.tenant), "tenant-a");
  record.tokens = 1;
  EXPECT_FALSE(RecordIsIntact(record));
}

TEST(RegionFormatTest, LooksUnformattedOnlyForZeros) {
  std::vector<uint8_t> region(8192, 0);
  EXPECT_TRUE(LooksUnformatted(region.data()));
  region[50] = 1;
  EXPECT_FALSE(LooksUnformatted(region.data()));
}

}  // namespace
}  // namespace sparsepool::region_format
