// RatePacer: the waits it hands out at given times (exact), and a real stream held to
// its rate (a lower bound only: a loaded machine can make it slower, never faster).
#include "common/rate_pacer.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sparsepool {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(RatePacerTest, TheFirstCallGoesAtOnceAndTheNextWaitsForItsPay) {
  RatePacer pacer(/*bytes_per_second=*/1000, absl::ZeroDuration());
  EXPECT_EQ(pacer.Reserve(500, kT0), absl::ZeroDuration());
  EXPECT_EQ(pacer.Reserve(500, kT0), absl::Milliseconds(500));
  EXPECT_EQ(pacer.Reserve(1, kT0 + absl::Milliseconds(200)), absl::Milliseconds(800));
  // After an idle stretch the stream starts afresh: no credit for the idle time.
  EXPECT_EQ(pacer.Reserve(2000, kT0 + absl::Seconds(10)), absl::ZeroDuration());
  EXPECT_EQ(pacer.Reserve(1, kT0 + absl::Seconds(10)), absl::Seconds(2));
}

TEST(RatePacerTest, TheToleranceLetsABurstRunAheadOfItsPay) {
  RatePacer pacer(1000, absl::Milliseconds(300));
  EXPECT_EQ(pacer.Reserve(200, kT0), absl::ZeroDuration());
  EXPECT_EQ(pacer.Reserve(200, kT0), absl::ZeroDuration());  // 200 ms ahead: within 300
  EXPECT_EQ(pacer.Reserve(200, kT0), absl::Milliseconds(100));  // 400 ms ahead: 100 past
}

TEST(RatePacerTest, CallersOnManyThreadsShareOneRate) {
  RatePacer pacer(1000, absl::ZeroDuration());
  std::vector<absl::Duration> waits(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { waits[t] = pacer.Reserve(250, kT0); });
  for (std::thread& t : threads) t.join();
  std::sort(waits.begin(), waits.end());
  EXPECT_EQ(waits, (std::vector<absl::Duration>{absl::ZeroDuration(), absl::Milliseconds(250), absl::Milliseconds(500),
                                                absl::Milliseconds(750)}));
}

TEST(RatePacerTest, AStreamOfAcquiresTakesAtLeastItsPay) {
  RatePacer pacer(/*bytes_per_second=*/10'000'000, absl::ZeroDuration());
  const absl::Time start = absl::Now();
  absl::Duration waited;
  for (int i = 0; i < 5; ++i) waited += pacer.Acquire(1'000'000);  // 0.1 s each, the first paid after
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(399));
  // A sleep that ran long shortens the next wait: the waits add up to at most the pay.
  EXPECT_GT(waited, absl::ZeroDuration());
  EXPECT_LE(waited, absl::Milliseconds(400));
}

}  // namespace
}  // namespace sparsepool
