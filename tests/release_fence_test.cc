#include "common/release_fence.h"

#include <thread>

#include "gtest/gtest.h"

namespace sparsepool {
namespace {

constexpr uint64_t kIncarnation = 77;

TEST(ReleaseFenceTest, NothingIsAcknowledgeableBeforeAnEpochIsObserved) {
  ReleaseFence fence;
  EXPECT_EQ(fence.Acknowledgeable(), ReleaseEpoch{});
  fence.Observe({0, 5});  // incarnation 0 names nothing
  EXPECT_EQ(fence.Observed(), ReleaseEpoch{});
}

TEST(ReleaseFenceTest, WithNoWriteInFlightAnEpochIsAcknowledgeableAtOnce) {
  ReleaseFence fence;
  fence.Observe({kIncarnation, 3});
  EXPECT_EQ(fence.Acknowledgeable(), (ReleaseEpoch{kIncarnation, 3}));
  EXPECT_TRUE(fence.AwaitDrained(absl::ZeroDuration()));
}

// The property the daemon relies on: an epoch is acknowledged only once every write
// that began before the client observed it has finished.
TEST(ReleaseFenceTest, AnEpochWaitsForEveryWriteBegunBeforeItWasObserved) {
  ReleaseFence fence;
  fence.Observe({kIncarnation, 1});
  ReleaseFence::Ticket early = fence.Enter();
  ReleaseFence::Ticket early2 = fence.Enter();
  fence.Observe({kIncarnation, 2});
  ReleaseFence::Ticket late = fence.Enter();  // begun after: need not finish first
  EXPECT_EQ(fence.Acknowledgeable(), (ReleaseEpoch{kIncarnation, 1}));
  EXPECT_EQ(fence.in_flight(), 3);
  early.Done();
  EXPECT_EQ(fence.Acknowledgeable(), (ReleaseEpoch{kIncarnation, 1}));
  EXPECT_FALSE(fence.AwaitDrained(absl::Milliseconds(1)));
  early2.Done();
  EXPECT_EQ(fence.Acknowledgeable(), (ReleaseEpoch{kIncarnation, 2}));
  EXPECT_TRUE(fence.AwaitDrained(absl::ZeroDuration()));
  // `late` now holds back the next epoch, not this one.
  fence.Observe({kIncarnation, 3});
  EXPECT_EQ(fence.Acknowledgeable(), (ReleaseEpoch{kIncarnation, 2}));
  late.Done();
  EXPECT_EQ(fence.Acknowledgeable(), (ReleaseEpoch{kIncarnation, 3}));
  EXPECT_EQ(fence.in_flight(), 0);
}

// A restarted daemon (another incarnation) is owed the same: writes begun under its
// predecessor hold back its first epoch too.
TEST(ReleaseFenceTest, ANewIncarnationWaitsForWritesBegunBefore) {
  ReleaseFence fence;
  fence.Observe({kIncarnation, 9});
  ReleaseFence::Ticket before = fence.Enter();
  fence.Observe({kIncarnation + 1, 1});
  EXPECT_EQ(fence.Acknowledgeable(), (ReleaseEpoch{kIncarnation, 9}));
  before.Done();
  EXPECT_EQ(fence.Acknowledgeable(), (ReleaseEpoch{kIncarnation + 1, 1}));
}

TEST(ReleaseFenceTest, MovedTicketsEndOnce) {
  ReleaseFence fence;
  ReleaseFence::Ticket a = fence.Enter();
  ReleaseFence::Ticket b = std::move(a);
  EXPECT_EQ(fence.in_flight(), 1);
  a.Done();  // moved from: nothing
  EXPECT_EQ(fence.in_flight(), 1);
  ReleaseFence::Ticket c = fence.Enter();
  c = std::move(b);  // c's own write ends, b's moves in
  EXPECT_EQ(fence.in_flight(), 1);
  c.Done();
  EXPECT_EQ(fence.in_flight(), 0);
}

// Many writers and an observer at once: every acknowledged epoch was observed after
// the writes that ended before the acknowledgement began, never before.
TEST(ReleaseFenceTest, ConcurrentWritersNeverSeeAnEpochAcknowledgedUnderThem) {
  ReleaseFence fence;
  std::atomic<bool> stop{false};
  std::atomic<int> violations{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&] {
      while (!stop) {
        ReleaseFence::Ticket ticket = fence.Enter();
        // Read after Enter: every epoch newer than this one was observed while the
        // write runs, and none of those may be acknowledged until it ends. (Read
        // before Enter, it would miss the epochs observed in between, which rightly do
        // not wait for this write; a slow run, under AddressSanitizer, showed that.)
        const ReleaseEpoch entered = fence.Observed();
        for (int spin = 0; spin < 100; ++spin) {
          const ReleaseEpoch ack = fence.Acknowledgeable();
          if (ack.incarnation == kIncarnation && ack.epoch > entered.epoch) ++violations;
        }
      }
    });
  }
  for (uint64_t e = 1; e <= 2000; ++e) fence.Observe({kIncarnation, e});
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(fence.Acknowledgeable(), (ReleaseEpoch{kIncarnation, 2000}));
}

// Refused, no write may enter (and none is counted); admitted again, they do.
TEST(ReleaseFenceTest, ARefusedFenceLetsNoWriteEnterUntilAdmitted) {
  ReleaseFence fence;
  ASSERT_TRUE(fence.TryEnter().ok());
  fence.Refuse(absl::ResourceExhaustedError("16 fenced connections"));
  absl::StatusOr<ReleaseFence::Ticket> refused = fence.TryEnter();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("16 fenced connections"), absl::string_view::npos);
  EXPECT_EQ(fence.in_flight(), 0);
  fence.Admit();
  absl::StatusOr<ReleaseFence::Ticket> entered = fence.TryEnter();
  ASSERT_TRUE(entered.ok());
  EXPECT_EQ(fence.in_flight(), 1);
}

}  // namespace
}  // namespace sparsepool
