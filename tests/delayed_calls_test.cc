#include "service/delayed_calls.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace sparsepool {
namespace {

TEST(DelayedCallsTest, RunsCallsInTimeOrderAndNotBeforeTheirTime) {
  DelayedCalls delayed;
  absl::Mutex mu;
  std::vector<int> order;
  std::vector<absl::Duration> early;  // how far before its time a call ran, if it did
  absl::Notification last;
  const absl::Time start = absl::Now();
  for (int i : {3, 1, 2}) {
    const absl::Time when = start + absl::Milliseconds(100 * i);
    delayed.RunAt(when, [&, i, when](bool stopping) {
      EXPECT_FALSE(stopping);
      absl::MutexLock lock(&mu);
      order.push_back(i);
      if (absl::Now() < when) early.push_back(when - absl::Now());
      if (order.size() == 3) last.Notify();
    });
  }
  last.WaitForNotification();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(early.empty());
  EXPECT_EQ(delayed.waiting(), 0u);
}

// A call added with an earlier time than the one the thread sleeps for runs first.
TEST(DelayedCallsTest, AnEarlierCallWakesTheThread) {
  DelayedCalls delayed;
  std::atomic<bool> late_ran{false};
  absl::Notification soon_ran;
  delayed.RunAt(absl::Now() + absl::Hours(1), [&](bool) { late_ran = true; });
  delayed.RunAt(absl::Now() + absl::Milliseconds(20), [&](bool stopping) {
    EXPECT_FALSE(stopping);
    soon_ran.Notify();
  });
  soon_ran.WaitForNotification();
  EXPECT_FALSE(late_ran.load());
  EXPECT_EQ(delayed.waiting(), 1u);
}

// A long call (a Create zeroing gigabytes) does not hold up another that falls due
// meanwhile: the second runs while the first still waits for it.
TEST(DelayedCallsTest, ALongCallDoesNotHoldUpTheNext) {
  DelayedCalls delayed;
  absl::Notification second_ran, first_done;
  bool first_saw_second = false;
  const absl::Time now = absl::Now();
  delayed.RunAt(now, [&](bool) {
    first_saw_second = second_ran.WaitForNotificationWithTimeout(absl::Seconds(20));
    first_done.Notify();
  });
  delayed.RunAt(now + absl::Milliseconds(10), [&](bool) { second_ran.Notify(); });
  first_done.WaitForNotification();
  EXPECT_TRUE(first_saw_second);
}

TEST(DelayedCallsTest, StopRunsEveryWaitingCallAtOnceAndLaterOnesInline) {
  std::atomic<int> stopped_calls{0};
  {
    DelayedCalls delayed;
    for (int i = 0; i < 5; ++i) {
      delayed.RunAt(absl::Now() + absl::Hours(1), [&](bool stopping) {
        EXPECT_TRUE(stopping);
        ++stopped_calls;
      });
    }
    delayed.Stop();
    EXPECT_EQ(stopped_calls.load(), 5);  // Stop returns once they have run
    EXPECT_EQ(delayed.waiting(), 0u);
    bool ran_inline = false;
    delayed.RunAt(absl::Now() + absl::Hours(1), [&](bool stopping) { ran_inline = stopping; });
    EXPECT_TRUE(ran_inline);
  }
  // Destroyed without Stop: waiting calls run as stopped too.
  std::atomic<int> at_destruction{0};
  {
    DelayedCalls delayed;
    delayed.RunAt(absl::Now() + absl::Hours(1), [&](bool stopping) { at_destruction += stopping; });
  }
  EXPECT_EQ(at_destruction.load(), 1);
}

}  // namespace
}  // namespace sparsepool
