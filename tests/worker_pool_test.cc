#include "common/worker_pool.h"

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace sparsepool {
namespace {

// Runs a loop and returns how many times each unit ran.
std::vector<int> RunCounts(WorkerPool& pool, size_t units) {
  std::vector<std::atomic<int>> counts(units);
  pool.ParallelFor(units, [&](size_t unit) { counts[unit].fetch_add(1); });
  std::vector<int> result;
  for (auto& count : counts) result.push_back(count.load());
  return result;
}

TEST(WorkerPoolTest, EveryUnitRunsExactlyOnce) {
  for (int threads : {1, 2, 4}) {
    WorkerPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (size_t units : {0, 1, 2, 7, 1000}) {
      for (int round = 0; round < 20; ++round) {
        EXPECT_EQ(RunCounts(pool, units), std::vector<int>(units, 1))
            << threads << " threads, " << units << " units";
      }
    }
  }
}

TEST(WorkerPoolTest, SlowUnitsAreSharedBetweenThreads) {
  WorkerPool pool(4);
  absl::Mutex mu;
  std::set<std::thread::id> ran_on;
  pool.ParallelFor(64, [&](size_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    absl::MutexLock lock(&mu);
    ran_on.insert(std::this_thread::get_id());
  });
  EXPECT_GE(ran_on.size(), 2u);  // sleeping units leave the workers time to wake
}

// No unit may run after ParallelFor returns: the function it names is gone by then.
TEST(WorkerPoolTest, NoUnitRunsAfterTheLoopReturns) {
  WorkerPool pool(4);
  std::atomic<int> late{0};
  for (int round = 0; round < 200; ++round) {
    std::atomic<bool> returned{false};
    pool.ParallelFor(8, [&](size_t) {
      if (returned.load()) late.fetch_add(1);
    });
    returned.store(true);
  }
  EXPECT_EQ(late.load(), 0);
}

// Callers that find the workers busy run their own units: all loops complete, none
// loses or repeats a unit, and a loop started from inside a unit does not deadlock.
TEST(WorkerPoolTest, ConcurrentAndNestedCallersAllComplete) {
  WorkerPool pool(3);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 100; ++round) {
        if (RunCounts(pool, 50) != std::vector<int>(50, 1)) wrong.fetch_add(1);
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(wrong.load(), 0);

  std::atomic<int> inner_units{0};
  pool.ParallelFor(6, [&](size_t) {
    pool.ParallelFor(5, [&](size_t) { inner_units.fetch_add(1); });
  });
  EXPECT_EQ(inner_units.load(), 30);
}

TEST(WorkerPoolTest, DestroyedRightAfterALoop) {
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> ran{0};
    {
      WorkerPool pool(4);
      pool.ParallelFor(16, [&](size_t) { ran.fetch_add(1); });
    }
    EXPECT_EQ(ran.load(), 16);
  }
}

}  // namespace
}  // namespace sparsepool
