#include "transport/data_plane.h"

#include <cstring>
#include <random>
#include <vector>

#include "bench/entry_pattern.h"
#include "common/layout_proto.h"
#include "common/release_fence.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/cxl/cpu_gather.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

// A layout over a plain buffer: pages laid out in reverse order so that addresses do
// not follow token order.
SequenceLayout MakeLayout(SequenceId id, uint32_t layers, uint32_t entry_bytes, uint32_t stride,
                          uint32_t page_tokens, uint64_t tokens) {
  SequenceLayout l;
  l.sequence_id = id;
  l.layers = layers;
  l.entry_bytes = entry_bytes;
  l.entry_stride = stride;
  l.page_tokens = page_tokens;
  l.tokens = tokens;
  l.pages_per_layer = static_cast<uint32_t>((tokens + page_tokens - 1) / page_tokens);
  const uint64_t pages = uint64_t{layers} * l.pages_per_layer;
  for (uint64_t p = 0; p < pages; ++p) l.page_offsets.push_back((pages - 1 - p) * l.PageBytes());
  l.region.size_bytes = pages * l.PageBytes();
  return l;
}

TEST(DataPlaneValidationTest, NamesEveryBadValue) {
  const SequenceLayout a = MakeLayout(7, 2, 656, 656, 64, 100);
  const SequenceLayout b = MakeLayout(8, 2, 584, 584, 64, 100);
  const std::vector<const SequenceLayout*> one = {&a};
  const std::vector<const SequenceLayout*> mixed = {&a, &b};
  std::vector<std::byte> out(2 * 656);
  auto check = [&](GatherBatch batch, const char* message) {
    absl::Status s = ValidateGather(batch);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << message;
    EXPECT_THAT(std::string(s.message()), HasSubstr(message));
  };
  const std::vector<int32_t> ok = {0, 99};
  const std::vector<int32_t> past = {0, 100};
  const std::vector<int32_t> below = {-2, 1};
  const std::vector<int32_t> three = {0, 1, 2};
  check({0, one, past, absl::MakeSpan(out)}, "token index 100 at batch row 0, position 1 is past the 100 tokens written to sequence 7 (layer 0)");
  check({1, one, below, absl::MakeSpan(out)}, "token index -2");
  check({2, one, ok, absl::MakeSpan(out)}, "layer 2 is out of range for sequence 7");
  check({0, one, ok, absl::MakeSpan(out).subspan(1)}, "output buffer of 1311 bytes");
  check({0, mixed, ok, absl::MakeSpan(out)}, "entry_bytes 584");
  check({0, mixed, three, absl::MakeSpan(out)}, "3 indices do not split into 2 rows");
  EXPECT_TRUE(ValidateGather({0, one, ok, absl::MakeSpan(out)}).ok());

  std::vector<std::byte> entries(3 * 656);
  EXPECT_TRUE(ValidateWrite({&a, 1, 97, entries}).ok());
  EXPECT_THAT(std::string(ValidateWrite({&a, 1, 98, entries}).message()), HasSubstr("tokens [98, 101)"));
  EXPECT_THAT(std::string(ValidateWrite({&a, 2, 0, entries}).message()), HasSubstr("layer 2"));
  EXPECT_THAT(std::string(ValidateWrite({&a, 0, 0, absl::MakeSpan(entries).subspan(1)}).message()),
              HasSubstr("not a whole number"));
}

// The base class's part of a write: validation once, then pieces of at most
// kWriteChunkBytes that tile the range in order (each transport checks liveness around
// its piece). A transport that records the pieces it is given.
class PieceRecorder final : public DataPlane {
 public:
  const char* name() const override { return "recorder"; }
  std::vector<std::pair<uint64_t, uint64_t>> pieces;  // first token, tokens

 protected:
  absl::Status GatherValidated(const GatherBatch&) override { return absl::OkStatus(); }
  absl::Status WriteValidated(const WriteRange& range) override {
    pieces.push_back({range.first_token, range.entries.size() / range.sequence->entry_bytes});
    return absl::OkStatus();
  }
};

TEST(DataPlaneWriteTest, LongWritesGoInPiecesThatTileTheRange) {
  const uint64_t tokens = 60000;  // 39 MB of 656-byte entries
  const SequenceLayout l = MakeLayout(1, 1, 656, 656, 64, tokens);
  std::vector<std::byte> entries((tokens - 10) * 656);
  PieceRecorder plane;
  ASSERT_TRUE(plane.Write({&l, 0, 10, entries}).ok());
  const uint64_t per_piece = DataPlane::kWriteChunkBytes / 656;
  ASSERT_EQ(plane.pieces.size(), (tokens - 10 + per_piece - 1) / per_piece);
  uint64_t next = 10;
  for (const auto& [first, count] : plane.pieces) {
    EXPECT_EQ(first, next);
    EXPECT_LE(count * 656, DataPlane::kWriteChunkBytes);
    next += count;
  }
  EXPECT_EQ(next, tokens);
  // A bad range is refused whole: no piece is written.
  plane.pieces.clear();
  std::vector<std::byte> too_many((tokens + 1) * 656);
  EXPECT_FALSE(plane.Write({&l, 0, 0, too_many}).ok());
  EXPECT_TRUE(plane.pieces.empty());
}

// While the daemon refuses to fence the connection, a write is refused whole, saying
// why, and nothing reaches the transport; once the fence is admitted again writes go on.
TEST(DataPlaneWriteTest, WritesWaitForTheDaemonToFenceTheConnection) {
  const SequenceLayout l = MakeLayout(1, 1, 656, 656, 64, 100);
  std::vector<std::byte> entries(10 * 656);
  PieceRecorder plane;
  ReleaseFence fence;
  plane.set_release_fence(&fence);
  fence.Refuse(absl::ResourceExhaustedError("client \"x\" already has 16 fenced connections"));
  absl::Status refused = plane.Write({&l, 0, 0, entries});
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("does not fence this connection's writes"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("already has 16 fenced connections"));
  EXPECT_TRUE(plane.pieces.empty());
  EXPECT_EQ(fence.in_flight(), 0);
  fence.Admit();
  ASSERT_TRUE(plane.Write({&l, 0, 0, entries}).ok());
  EXPECT_EQ(plane.pieces.size(), 1u);
}

// Scatter then gather over every shape combination, byte-exact against the pattern,
// with padding left untouched.
TEST(CpuGatherTest, ScatterThenGatherIsExactForManyShapes) {
  std::mt19937_64 rng(3);
  for (uint32_t entry_bytes : {1u, 17u, 584u, 656u, 1152u}) {
    for (uint32_t extra : {0u, 64u}) {
      for (uint32_t page_tokens : {1u, 7u, 64u}) {
        const uint64_t tokens = 1 + rng() % 300;
        SequenceLayout l = MakeLayout(1, 3, entry_bytes, entry_bytes + extra, page_tokens, tokens);
        std::vector<std::byte> region(l.region.size_bytes);
        std::vector<std::byte> entries(tokens * entry_bytes);
        for (uint32_t layer = 0; layer < 3; ++layer) {
          for (uint64_t t = 0; t < tokens; ++t) {
            bench::FillEntry(9, 1, layer, t, absl::MakeSpan(entries).subspan(t * entry_bytes, entry_bytes));
          }
          // Two writes that split at an arbitrary token.
          const uint64_t split = rng() % tokens;
          CpuScatterRange(region.data(), l, layer, 0, split, entries.data());
          CpuScatterRange(region.data(), l, layer, split, tokens - split,
                          entries.data() + split * entry_bytes);
        }
        std::vector<int32_t> indices(50);
        for (auto& i : indices) i = rng() % 5 == 0 ? -1 : static_cast<int32_t>(rng() % tokens);
        for (uint32_t layer = 0; layer < 3; ++layer) {
          std::vector<std::byte> out(indices.size() * entry_bytes, std::byte{0xEE});
          CpuGatherRow(region.data(), l, layer, indices, out.data());
          std::vector<std::byte> expected(entry_bytes);
          for (size_t i = 0; i < indices.size(); ++i) {
            const std::byte* got = out.data() + i * entry_bytes;
            if (indices[i] < 0) {
              for (uint32_t b = 0; b < entry_bytes; ++b) ASSERT_EQ(got[b], std::byte{0xEE});
              continue;
            }
            bench::FillEntry(9, 1, layer, indices[i], absl::MakeSpan(expected));
            ASSERT_EQ(std::memcmp(got, expected.data(), entry_bytes), 0)
                << "entry " << entry_bytes << " stride +" << extra << " page " << page_tokens;
          }
        }
      }
    }
  }
}

TEST(LayoutTest, ValidateLayoutRejectsPagesOutsideTheRegion) {
  SequenceLayout l = MakeLayout(1, 2, 656, 656, 64, 100);
  EXPECT_TRUE(ValidateLayout(l).ok());
  l.page_offsets[1] = l.region.size_bytes - 10;
  EXPECT_TRUE(absl::IsDataLoss(ValidateLayout(l)));
  l = MakeLayout(1, 2, 656, 656, 64, 100);
  l.tokens = 1000;
  EXPECT_FALSE(ValidateLayout(l).ok());
  l = MakeLayout(1, 2, 656, 600, 64, 100);
  EXPECT_FALSE(ValidateLayout(l).ok());
}

// A striped layout: each layer's pages are checked against its own stripe's region,
// and a region named twice or more stripes than layers is refused.
TEST(LayoutTest, ValidateLayoutChecksEachLayerAgainstItsStripesRegion) {
  SequenceLayout l = MakeLayout(1, 3, 656, 656, 64, 100);  // 2 pages a layer
  l.region.uuid[0] = 1;
  RegionRef small;
  small.uuid[0] = 2;
  small.path = "/dev/shm/small";
  small.size_bytes = 2 * l.PageBytes();
  l.stripe_regions = {small};  // layer 1 in `small`, layers 0 and 2 in the home region
  l.page_offsets[2] = 0;
  l.page_offsets[3] = l.PageBytes();
  EXPECT_TRUE(ValidateLayout(l).ok()) << ValidateLayout(l);
  EXPECT_EQ(l.LayerRegion(1).path, "/dev/shm/small");
  EXPECT_EQ(l.LayerRegion(2).uuid, l.region.uuid);
  SequenceLayout past = l;
  past.page_offsets[3] = 2 * l.PageBytes();  // inside the home region, past the small one
  EXPECT_TRUE(absl::IsDataLoss(ValidateLayout(past)));
  EXPECT_THAT(std::string(ValidateLayout(past).message()), ::testing::HasSubstr("(layer 1) lies outside region /dev/shm/small"));
  SequenceLayout twice = l;
  twice.stripe_regions[0].uuid = l.region.uuid;
  EXPECT_THAT(std::string(ValidateLayout(twice).message()), ::testing::HasSubstr("a second time"));
  SequenceLayout too_many = l;
  too_many.stripe_regions.resize(3);
  EXPECT_THAT(std::string(ValidateLayout(too_many).message()), ::testing::HasSubstr("4 stripes for 3 layers"));
}

// On the wire a striped layout's offsets travel in a field of their own, so that a
// client that predates striping refuses the layout (no page_offsets for its layers)
// rather than reading every layer from the home region.
TEST(LayoutTest, AStripedLayoutTravelsInItsOwnFieldAndComesBackWhole) {
  SequenceLayout l = MakeLayout(1, 3, 656, 656, 64, 100);
  l.region.uuid[0] = 1;
  l.stripe_regions.resize(1);
  l.stripe_regions[0].uuid[0] = 2;
  l.stripe_regions[0].size_bytes = l.region.size_bytes;
  v1::SequenceLayout proto;
  LayoutToProto(l, &proto);
  EXPECT_TRUE(proto.page_offsets().empty());
  EXPECT_EQ(proto.striped_page_offsets_size(), 6);
  auto back = LayoutFromProto(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->page_offsets, l.page_offsets);
  EXPECT_EQ(back->stripe_regions.size(), 1u);
  EXPECT_EQ(back->LayerRegion(1).uuid, l.stripe_regions[0].uuid);
  v1::SequenceLayout old_reader = proto;  // what a client without field 12 and 13 sees
  old_reader.clear_stripe_regions();
  old_reader.clear_striped_page_offsets();
  EXPECT_TRUE(absl::IsDataLoss(LayoutFromProto(old_reader).status()));
  v1::SequenceLayout both = proto;
  both.add_page_offsets(0);
  EXPECT_THAT(std::string(LayoutFromProto(both).status().message()), HasSubstr("unstriped page offsets"));
}

}  // namespace
}  // namespace sparsepool
