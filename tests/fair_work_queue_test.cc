#include "service/fair_work_queue.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace sparsepool {
namespace {

// Holds the queue's only thread until released, so that calls pile up behind it.
class Gate {
 public:
  FairWorkQueue::Work Blocker() {
    return [this](bool) {
      entered_.Notify();
      opened_.WaitForNotification();
    };
  }
  void WaitEntered() { entered_.WaitForNotification(); }
  void Open() { opened_.Notify(); }

 private:
  absl::Notification entered_;
  absl::Notification opened_;
};

constexpr FairWorkQueue::Class kBulk = FairWorkQueue::Class::kBulk;
constexpr FairWorkQueue::Class kUrgent = FairWorkQueue::Class::kUrgent;

// The names of the calls that ran, in the order they ran (each told it was not
// stopping).
class RunOrder {
 public:
  FairWorkQueue::Work Record(std::string name) {
    return [this, name](bool stopping) {
      EXPECT_FALSE(stopping) << name;
      absl::MutexLock lock(&mu_);
      names_.push_back(name);
    };
  }
  std::vector<std::string> WaitFor(size_t count) {
    absl::MutexLock lock(&mu_);
    const auto enough = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return names_.size() >= count; };
    mu_.Await(absl::Condition(&enough));
    return names_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);
};

FairWorkQueue::Options OneThread(size_t per_tenant = 256, size_t all = 4096) {
  FairWorkQueue::Options options;
  options.threads = 1;
  options.max_queued_per_tenant = per_tenant;
  options.max_queued = all;
  return options;
}

// A flood of one tenant's calls queued before a quiet tenant's one: the quiet call
// runs second, not after the flood.
TEST(FairWorkQueueTest, TenantsTakeTurnsWhateverTheyQueued) {
  FairWorkQueue queue(OneThread());
  Gate gate;
  ASSERT_TRUE(queue.Submit("flood", kBulk, gate.Blocker()).ok());
  gate.WaitEntered();
  RunOrder ran;
  constexpr int kFlood = 20;
  for (int i = 0; i < kFlood; ++i) ASSERT_TRUE(queue.Submit("flood", kBulk, ran.Record("flood")).ok());
  ASSERT_TRUE(queue.Submit("quiet", kBulk, ran.Record("quiet")).ok());
  ASSERT_TRUE(queue.Submit("third", kBulk, ran.Record("third")).ok());
  EXPECT_EQ(queue.counters().queued, kFlood + 2u);
  gate.Open();
  const std::vector<std::string> order = ran.WaitFor(kFlood + 2);
  // The turns: flood (one), quiet, third, then the rest of the flood.
  ASSERT_EQ(order.size(), kFlood + 2u);
  EXPECT_EQ(order[0], "flood");
  EXPECT_EQ(order[1], "quiet");
  EXPECT_EQ(order[2], "third");
  for (size_t i = 3; i < order.size(); ++i) EXPECT_EQ(order[i], "flood") << i;
}

// Within one tenant, calls run in the order they came.
TEST(FairWorkQueueTest, ATenantsCallsRunInOrder) {
  FairWorkQueue queue(OneThread());
  Gate gate;
  ASSERT_TRUE(queue.Submit("a", kBulk, gate.Blocker()).ok());
  gate.WaitEntered();
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification done;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(queue
                    .Submit("a", kBulk,
                            [&, i](bool) {
                              absl::MutexLock lock(&mu);
                              order.push_back(i);
                              if (order.size() == 10) done.Notify();
                            })
                    .ok());
  }
  gate.Open();
  done.WaitForNotification();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

// Past its bound a tenant's call is refused at once, saying why, and the work is not
// run; another tenant is still admitted; the whole queue has a bound of its own.
TEST(FairWorkQueueTest, AFullQueueRefusesAtOnceAndOthersStillGetIn) {
  FairWorkQueue queue(OneThread(/*per_tenant=*/3, /*all=*/5));
  Gate gate;
  ASSERT_TRUE(queue.Submit("flood", kBulk, gate.Blocker()).ok());
  gate.WaitEntered();  // running, so no longer queued
  std::atomic<int> ran{0};
  const auto count = [&](bool) { ++ran; };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.Submit("flood", kBulk, count).ok());
  bool refused_ran = false;
  absl::Status refused = queue.Submit("flood", kBulk, [&](bool) { refused_ran = true; });
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "3 create calls of \"flood\" are queued already"))
      << refused;
  ASSERT_TRUE(queue.Submit("quiet", kBulk, count).ok());
  ASSERT_TRUE(queue.Submit("other", kBulk, count).ok());
  absl::Status all_full = queue.Submit("late", kBulk, count);
  EXPECT_TRUE(absl::IsResourceExhausted(all_full)) << all_full;
  EXPECT_TRUE(absl::StrContains(all_full.message(), "5 create calls are queued already")) << all_full;
  // Growths are bounded apart: the creates' full queue does not refuse them, and a call
  // coming back after it was admitted (it waited for memory) is never refused.
  EXPECT_TRUE(queue.Submit("late", kUrgent, count).ok());
  EXPECT_TRUE(queue.Submit("flood", kBulk, count, FairWorkQueue::Admission::kAdmitted).ok());
  EXPECT_EQ(queue.counters().refused, 2u);
  gate.Open();
  queue.Stop();
  EXPECT_FALSE(refused_ran);
  EXPECT_EQ(ran.load(), 7);
  EXPECT_EQ(queue.counters().done, 8u);
}

// Stop answers every queued call (stopping = true), waits for the one running, and a
// call submitted afterwards runs at once, told the queue stops.
TEST(FairWorkQueueTest, StopAnswersQueuedCallsAndLaterOnesAtOnce) {
  FairWorkQueue queue(OneThread());
  Gate gate;
  std::atomic<bool> blocker_done{false};
  ASSERT_TRUE(queue
                  .Submit("a", kBulk,
                          [&](bool stopping) {
                            EXPECT_FALSE(stopping);
                            gate.Blocker()(stopping);
                            blocker_done = true;
                          })
                  .ok());
  gate.WaitEntered();
  std::atomic<int> stopped{0};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(queue.Submit(i % 2 ? "a" : "b", kBulk, [&](bool stopping) { stopped += stopping ? 1 : 100; }).ok());
  }
  std::thread stopper([&] { queue.Stop(); });
  absl::SleepFor(absl::Milliseconds(50));
  gate.Open();
  stopper.join();
  EXPECT_TRUE(blocker_done.load());
  EXPECT_EQ(stopped.load(), 4);
  bool late_stopping = false;
  ASSERT_TRUE(queue.Submit("a", kBulk, [&](bool stopping) { late_stopping = stopping; }).ok());
  EXPECT_TRUE(late_stopping);
  EXPECT_EQ(queue.counters().queued, 0u);
}

// Several threads: a tenant's urgent calls can run side by side when nobody else waits.
TEST(FairWorkQueueTest, ThreadsServeOneTenantTogetherWhenAlone) {
  FairWorkQueue::Options options = OneThread();
  options.threads = 3;
  FairWorkQueue queue(options);
  absl::Mutex mu;
  int inside = 0;
  int most_inside = 0;
  absl::Notification done;
  std::atomic<int> finished{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(queue
                    .Submit("a", kUrgent,
                            [&](bool) {
                              {
                                absl::MutexLock lock(&mu);
                                most_inside = std::max(most_inside, ++inside);
                                const auto three = [&] { return most_inside == 3; };
                                mu.AwaitWithTimeout(absl::Condition(&three), absl::Seconds(10));
                                --inside;
                              }
                              if (++finished == 3) done.Notify();
                            })
                    .ok());
  }
  done.WaitForNotification();
  EXPECT_EQ(most_inside, 3);
}

// A growth never waits for creates: bulk work leaves the last thread free, and queued
// urgent work is taken before queued bulk work.
TEST(FairWorkQueueTest, UrgentWorkPassesBulkWorkQueuedOrRunning) {
  FairWorkQueue::Options options = OneThread();
  options.threads = 3;
  FairWorkQueue queue(options);
  Gate first, second;
  ASSERT_TRUE(queue.Submit("flood", kBulk, first.Blocker()).ok());
  ASSERT_TRUE(queue.Submit("other", kBulk, second.Blocker()).ok());
  first.WaitEntered();
  second.WaitEntered();
  // Two creates hold two of the three threads: a third create waits, a growth runs.
  std::atomic<bool> third_create_ran{false};
  ASSERT_TRUE(queue.Submit("flood", kBulk, [&](bool) { third_create_ran = true; }).ok());
  absl::Notification growth_ran;
  ASSERT_TRUE(queue.Submit("quiet", kUrgent, [&](bool) { growth_ran.Notify(); }).ok());
  EXPECT_TRUE(growth_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(third_create_ran.load());
  EXPECT_EQ(queue.counters().running, 2u);
  EXPECT_EQ(queue.counters().queued, 1u);
  first.Open();
  second.Open();
  queue.Stop();
  EXPECT_TRUE(third_create_ran.load());
}

// On one thread the order is urgent first, whatever was queued before it.
TEST(FairWorkQueueTest, QueuedGrowthsGoBeforeQueuedCreates) {
  FairWorkQueue queue(OneThread());
  Gate gate;
  ASSERT_TRUE(queue.Submit("a", kUrgent, gate.Blocker()).ok());
  gate.WaitEntered();
  RunOrder ran;
  ASSERT_TRUE(queue.Submit("a", kBulk, ran.Record("create a")).ok());
  ASSERT_TRUE(queue.Submit("b", kBulk, ran.Record("create b")).ok());
  ASSERT_TRUE(queue.Submit("b", kUrgent, ran.Record("growth b")).ok());
  ASSERT_TRUE(queue.Submit("a", kUrgent, ran.Record("growth a")).ok());
  gate.Open();
  const std::vector<std::string> order = ran.WaitFor(4);
  EXPECT_EQ(order, (std::vector<std::string>{"growth b", "growth a", "create a", "create b"}));
}

}  // namespace
}  // namespace sparsepool
