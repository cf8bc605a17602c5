#include "common/worker_pool.h"

namespace sparsepool {

WorkerPool::WorkerPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerMain(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
}

void WorkerPool::RunUnits(absl::FunctionRef<void(size_t)> fn, size_t units) {
  for (size_t unit = next_unit_.fetch_add(1, std::memory_order_relaxed); unit < units;
       unit = next_unit_.fetch_add(1, std::memory_order_relaxed)) {
    fn(unit);
  }
}

void WorkerPool::ParallelFor(size_t units, absl::FunctionRef<void(size_t)> fn) {
  if (workers_.empty() || units <= 1 || !owner_.TryLock()) {
    for (size_t unit = 0; unit < units; ++unit) fn(unit);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    // No worker is inside a loop here (the previous caller waited them out), so the
    // counter can be reset without racing a claim.
    next_unit_.store(0, std::memory_order_relaxed);
    loop_.fn = &fn;
    loop_.units = units;
    loop_.open = true;
    ++loop_.generation;
  }
  RunUnits(fn, units);
  {
    absl::MutexLock lock(&mu_);
    loop_.open = false;
    loop_.fn = nullptr;
    mu_.Await(absl::Condition(
        +[](int* inside) { return *inside == 0; }, &inside_));
  }
  owner_.Unlock();
}

void WorkerPool::WorkerMain() {
  uint64_t seen = 0;
  while (true) {
    const absl::FunctionRef<void(size_t)>* fn;
    size_t units;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this, &seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (loop_.open && loop_.generation != seen);
      };
      mu_.Await(absl::Condition(&has_work));
      if (stopping_) return;
      seen = loop_.generation;
      fn = loop_.fn;
      units = loop_.units;
      ++inside_;
    }
    RunUnits(*fn, units);
    absl::MutexLock lock(&mu_);
    --inside_;
  }
}

}  // namespace sparsepool
