// The decode session's host bookkeeping, on the CPU (CI): rows taken and freed, the
// pages the device must be given, reservations ahead of need, and when a row must wait
// or leave.
#include "client/session_rows.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool {
namespace {

// The time the tests' reservations are asked and fail at.
const absl::Time kNow = absl::UnixEpoch() + absl::Hours(1);

using ::testing::HasSubstr;
using Readiness = SessionRows::StepReadiness;

SessionShape Shape() {
  SessionShape s;
  s.max_batch = 2;
  s.layers = 3;
  s.entry_bytes = 656;
  s.page_tokens = 64;
  s.max_tokens = 1000;
  s.reserve_tokens = 128;
  return s;
}

// A layout of `tokens` tokens whose page p of layer l sits at offset (l * 1000 + p) * 4096.
std::shared_ptr<const SequenceLayout> Layout(SequenceId id, uint64_t tokens, uint32_t layers = 3) {
  auto l = std::make_shared<SequenceLayout>();
  l->sequence_id = id;
  l->layers = layers;
  l->entry_bytes = l->entry_stride = 656;
  l->page_tokens = 64;
  l->tokens = tokens;
  l->pages_per_layer = static_cast<uint32_t>((tokens + 63) / 64);
  l->record_offset = 4096 + id * 512;
  for (uint32_t layer = 0; layer < layers; ++layer) {
    for (uint32_t p = 0; p < l->pages_per_layer; ++p) l->page_offsets.push_back((layer * 1000 + p) * 4096);
  }
  return l;
}

const std::byte* const kRegion = reinterpret_cast<const std::byte*>(uintptr_t{0x1000000});

// Row 0 of `rows` takes sequence `id` (the pool holding `reserved` tokens, `tokens`
// written), and the reservation it is then due fails with `why` at kNow.
void JoinAndFailItsReservation(SessionRows& rows, SequenceId id, uint64_t reserved, uint64_t tokens,
                               absl::Status why) {
  ASSERT_TRUE(rows.Join(Layout(id, reserved), tokens, {kRegion}).ok());
  rows.TakePagesToUpload(0);
  auto due = rows.ReservationDue(0, kNow);
  ASSERT_TRUE(due.has_value()) << reserved << " - (" << tokens << " + 1) is under half the reserve";
  rows.ReservationFailed(*due, std::move(why), kNow);
}

TEST(SessionRowsTest, JoinsCheckTheShapeAndTakeFreeRows) {
  SessionRows rows(Shape());
  EXPECT_EQ(rows.max_pages(), 16u);  // ceil(1000 / 64)
  EXPECT_EQ(rows.InitialReservation(100), 228u);
  EXPECT_EQ(rows.InitialReservation(950), 1000u) << "never past max_tokens";
  EXPECT_THAT(std::string(rows.Join(Layout(1, 100, 2), 100, {kRegion}).status().message()), HasSubstr("has 2 layers"));
  EXPECT_THAT(std::string(rows.Join(Layout(1, 100), 200, {kRegion}).status().message()), HasSubstr("fewer than the 200"));
  EXPECT_THAT(std::string(rows.Join(Layout(1, 2000), 1500, {kRegion}).status().message()), HasSubstr("max_tokens 1000"));
  auto a = rows.Join(Layout(1, 228), 100, {kRegion});
  auto b = rows.Join(Layout(2, 228), 100, {kRegion});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, 0u);
  EXPECT_EQ(*b, 1u);
  EXPECT_TRUE(absl::IsResourceExhausted(rows.Join(Layout(3, 228), 100, {kRegion}).status()));
  rows.Leave(0);
  auto c = rows.Join(Layout(3, 228), 100, {kRegion});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 0u) << "a freed row is taken again";
  EXPECT_EQ(rows.sequence(0), 3u);
}

TEST(SessionRowsTest, TablesPointIntoTheRowsDevicePagesAndFreeRowsAreNull) {
  SessionRows rows(Shape());
  ASSERT_TRUE(rows.Join(Layout(7, 228), 100, {kRegion}).ok());
  uint64_t device_pages[2 * 3 * 16];
  const auto tables = rows.RowTables(0, device_pages);
  ASSERT_EQ(tables.size(), 3u);
  for (uint32_t layer = 0; layer < 3; ++layer) {
    EXPECT_EQ(tables[layer].page_offsets, device_pages + layer * 16);
    EXPECT_EQ(tables[layer].tokens, 100u);
    EXPECT_EQ(tables[layer].sequence_id, 7u);
    EXPECT_EQ(tables[layer].record_offset, 4096u + 7 * 512);
    EXPECT_EQ(tables[layer].region, kRegion);
  }
  for (const auto& t : rows.RowTables(1, device_pages + 48)) EXPECT_EQ(t.page_offsets, nullptr);
  EXPECT_EQ(rows.DeviceRow(1).active, 0u);
}

// A striped sequence's layers read their stripe's region, and every record check the
// home region's.
TEST(SessionRowsTest, AStripedRowReadsEachLayerFromItsStripesRegion) {
  SessionRows rows(Shape());
  auto striped = std::make_shared<SequenceLayout>(*Layout(9, 228));
  striped->stripe_regions.resize(1);  // 2 stripes: layers 0 and 2 home, layer 1 the other
  const std::byte* const other = kRegion + 0x100000;
  EXPECT_THAT(std::string(rows.Join(striped, 100, {kRegion}).status().message()),
              HasSubstr("has 2 stripe region(s), and 1 device address(es)"));
  ASSERT_TRUE(rows.Join(striped, 100, {kRegion, other}).ok());
  uint64_t device_pages[2 * 3 * 16];
  const auto tables = rows.RowTables(0, device_pages);
  EXPECT_EQ(tables[0].region, kRegion);
  EXPECT_EQ(tables[1].region, other);
  EXPECT_EQ(tables[2].region, kRegion);
  for (const auto& t : tables) EXPECT_EQ(t.record_region, kRegion) << "every record check reads the home region";
}

// Pages go to the device once; capacity is what both the pool and the device hold.
TEST(SessionRowsTest, PagesAreUploadedOnceAndCapacityFollowsThePoolAndTheDevice) {
  SessionRows rows(Shape());
  ASSERT_TRUE(rows.Join(Layout(1, 228), 100, {kRegion}).ok());
  EXPECT_EQ(rows.capacity(0), 0u) << "nothing on the device yet";
  EXPECT_EQ(rows.Readiness(0), Readiness::kNoRoom);
  const SessionRows::PageRange first = rows.TakePagesToUpload(0);
  EXPECT_EQ(first.from, 0u);
  EXPECT_EQ(first.to, 4u);  // ceil(228 / 64)
  EXPECT_TRUE(rows.TakePagesToUpload(0).empty());
  EXPECT_EQ(rows.capacity(0), 228u) << "the pool's tokens, below the 256 the pages hold";
  EXPECT_EQ(rows.DeviceRow(0).capacity_tokens, 228u);
  EXPECT_EQ(rows.Readiness(0), Readiness::kReady);
}

// Reservations start when less than half of reserve_tokens is left, one at a time, and
// a step waits only when the reserve ran out while one is in flight.
TEST(SessionRowsTest, ReservationsRunAheadAndAStepWaitsOnlyWhenOneFellBehind) {
  SessionRows rows(Shape());
  ASSERT_TRUE(rows.Join(Layout(1, 228), 100, {kRegion}).ok());
  rows.TakePagesToUpload(0);
  int steps = 0;
  while (!rows.ReservationDue(0, kNow).has_value()) {
    ASSERT_EQ(rows.Readiness(0), Readiness::kReady);
    rows.Advance(0);
    ++steps;
  }
  EXPECT_EQ(steps, 64) << "due once 228 - (tokens + 1) < 64";
  EXPECT_TRUE(rows.reserving(0));
  EXPECT_FALSE(rows.ReservationDue(0, kNow).has_value()) << "one at a time";
  while (rows.Readiness(0) == Readiness::kReady) rows.Advance(0);
  EXPECT_EQ(rows.tokens(0), 228u);
  EXPECT_EQ(rows.Readiness(0), Readiness::kWaitForReservation);
}

TEST(SessionRowsTest, AFinishedReservationGrowsTheRowAndAStaleOneIsIgnored) {
  SessionRows rows(Shape());
  ASSERT_TRUE(rows.Join(Layout(1, 228), 200, {kRegion}).ok());
  rows.TakePagesToUpload(0);
  auto due = rows.ReservationDue(0, kNow);
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->tokens, 356u);  // 228 + 128
  ASSERT_TRUE(rows.ApplyReservation(*due, Layout(1, 356)));
  EXPECT_EQ(rows.reserved(0), 356u);
  const SessionRows::PageRange grown = rows.TakePagesToUpload(0);
  EXPECT_EQ(grown.from, 4u);
  EXPECT_EQ(grown.to, 6u);
  EXPECT_EQ(rows.capacity(0), 356u);
  // A reservation made for the row's previous occupant changes nothing.
  auto stale = rows.ReservationDue(0, kNow);
  ASSERT_FALSE(stale.has_value()) << "356 - 201 is above half the reserve";
  SessionRows::Reservation old{0, due->generation, 1, 484};
  rows.Leave(0);
  ASSERT_TRUE(rows.Join(Layout(9, 228), 10, {kRegion}).ok());
  EXPECT_FALSE(rows.ApplyReservation(old, Layout(1, 484)));
  EXPECT_EQ(rows.sequence(0), 9u);
  EXPECT_EQ(rows.reserved(0), 228u);
}

TEST(SessionRowsTest, RowsStopAtMaxTokensAndAFailedReservationMayBeRetried) {
  SessionShape shape = Shape();
  shape.max_tokens = 130;
  SessionRows rows(shape);
  ASSERT_TRUE(rows.Join(Layout(1, 130), 128, {kRegion}).ok());
  rows.TakePagesToUpload(0);
  EXPECT_FALSE(rows.ReservationDue(0, kNow).has_value()) << "the pool already holds max_tokens";
  rows.Advance(0);
  EXPECT_EQ(rows.Readiness(0), Readiness::kReady);
  rows.Advance(0);
  EXPECT_EQ(rows.Readiness(0), Readiness::kPastMaxTokens);

  SessionRows other(Shape());
  ASSERT_NO_FATAL_FAILURE(JoinAndFailItsReservation(other, 2, 100, 100, absl::UnavailableError("the daemon is away")));
  EXPECT_FALSE(other.reserving(0));
  EXPECT_EQ(other.Readiness(0), Readiness::kNoRoom);
  EXPECT_TRUE(absl::IsUnavailable(other.reservation_error(0))) << "kept for the step that finds no room";
  auto again = other.ReservationDue(0, kNow);
  ASSERT_TRUE(again.has_value()) << "out of room, it asks again at once";
  ASSERT_TRUE(other.ApplyReservation(*again, Layout(2, 228)));
  EXPECT_TRUE(other.reservation_error(0).ok()) << "a reservation that succeeds clears it";
  // A failure for the row's previous occupant is not the new one's, and a row's leave
  // and the next join start with none.
  other.TakePagesToUpload(0);
  std::optional<SessionRows::Reservation> pending;
  while (!(pending = other.ReservationDue(0, kNow)).has_value()) other.Advance(0);
  other.ReservationFailed(*pending, absl::ResourceExhaustedError("full"), kNow);
  EXPECT_TRUE(absl::IsResourceExhausted(other.reservation_error(0)));
  other.Leave(0);
  EXPECT_TRUE(other.reservation_error(0).ok()) << "cleared by the leave";
  ASSERT_TRUE(other.Join(Layout(3, 100), 100, {kRegion}).ok());
  EXPECT_TRUE(other.reservation_error(0).ok());
  other.ReservationFailed(*pending, absl::ResourceExhaustedError("full"), kNow);
  EXPECT_TRUE(other.reservation_error(0).ok()) << "made for the row's previous occupant";
}

// A row whose reservation failed while it still has room does not ask the pool again
// every step: it waits kReservationRetry, unless its room runs low (under a quarter of
// the reserve, 32 tokens here) or out first.
TEST(SessionRowsTest, AFailedReservationIsAskedAgainAfterABackoffWhileTheRowHasRoom) {
  SessionRows rows(Shape());
  ASSERT_NO_FATAL_FAILURE(JoinAndFailItsReservation(rows, 1, 228, 170, absl::ResourceExhaustedError("pool full")));
  rows.Advance(0);
  EXPECT_FALSE(rows.ReservationDue(0, kNow + absl::Milliseconds(50)).has_value()) << "backing off, with room";
  EXPECT_EQ(rows.Readiness(0), Readiness::kReady) << "and stepping on";
  EXPECT_TRUE(rows.ReservationDue(0, kNow + SessionRows::kReservationRetry).has_value()) << "the backoff is over";

  SessionRows low(Shape());
  ASSERT_NO_FATAL_FAILURE(JoinAndFailItsReservation(low, 3, 228, 170, absl::UnavailableError("away")));
  while (low.tokens(0) < 195) {
    low.Advance(0);
    ASSERT_FALSE(low.ReservationDue(0, kNow).has_value()) << "backing off at " << low.tokens(0) << " tokens";
  }
  low.Advance(0);  // 196 tokens: 228 - 197 is under 32
  EXPECT_TRUE(low.ReservationDue(0, kNow).has_value()) << "room running low ends the backoff";

  SessionRows out_of_room(Shape());
  ASSERT_NO_FATAL_FAILURE(JoinAndFailItsReservation(out_of_room, 2, 228, 227, absl::UnavailableError("away")));
  out_of_room.Advance(0);  // its last token of room
  EXPECT_TRUE(out_of_room.ReservationDue(0, kNow).has_value()) << "no room: asks at once, backoff or not";
}

}  // namespace
}  // namespace sparsepool
