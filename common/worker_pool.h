// A fixed set of threads that split one loop between them and the caller: the CPU
// gather uses it because one core keeps too few cache misses in flight to read scattered
// entries as fast as memory can deliver them (docs/benchmarks.md), while several cores
// together come close to a contiguous copy.
//
// One ParallelFor at a time has the workers; a call made while another is running does
// its units on its own thread instead of waiting, so concurrent callers never block
// each other and never deadlock.
#ifndef SPARSEPOOL_COMMON_WORKER_POOL_H_
#define SPARSEPOOL_COMMON_WORKER_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace sparsepool {

class WorkerPool {
 public:
  // `threads` counts the caller: 1 starts no thread and runs every loop inline.
  // REQUIRES: threads >= 1.
  explicit WorkerPool(int threads);
  // Joins the workers; no unit runs afterwards.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(i) for every i in [0, units) exactly once, spread over the caller and the
  // workers, and returns when all have returned. Units are claimed one at a time in
  // increasing order, so a unit should be big enough to be worth a claim (tens of
  // microseconds).
  void ParallelFor(size_t units, absl::FunctionRef<void(size_t)> fn);

 private:
  // The loop being run. Workers may join it only while it is open; the caller closes
  // it when it runs out of units, then waits for the workers inside it to leave, so fn
  // is never called after ParallelFor returns.
  struct Loop {
    const absl::FunctionRef<void(size_t)>* fn = nullptr;
    size_t units = 0;
    bool open = false;
    uint64_t generation = 0;
  };

  void WorkerMain();
  void RunUnits(absl::FunctionRef<void(size_t)> fn, size_t units);

  absl::Mutex owner_;  // held by the ParallelFor that has the workers
  // A standard mutex and condition variables rather than absl::Mutex::Await: a
  // notify_all wakes every worker at once, where Await wakes waiting writers one after
  // another (each woken worker wakes the next on unlock), which cost about 6 us per
  // worker per loop on the 16-core host.
  std::mutex mu_;
  std::condition_variable loop_started_;
  std::condition_variable workers_left_;
  Loop loop_;  // guarded by mu_
  int inside_ = 0;  // guarded by mu_: workers running units of loop_
  bool stopping_ = false;  // guarded by mu_
  std::atomic<size_t> next_unit_{0};
  std::vector<std::thread> workers_;  // last: started once everything above exists
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_WORKER_POOL_H_
