#include "common/worker_pool.h"

namespace sparsepool {

WorkerPool::WorkerPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerMain(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  loop_started_.notify_all();
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
    std::lock_guard<std::mutex> lock(mu_);
    // No worker is inside a loop here (the previous caller waited them out), so the
    // counter can be reset without racing a claim.
    next_unit_.store(0, std::memory_order_relaxed);
    loop_.fn = &fn;
    loop_.units = units;
    loop_.open = true;
    ++loop_.generation;
  }
  loop_started_.notify_all();
  RunUnits(fn, units);
  {
    std::unique_lock<std::mutex> lock(mu_);
    loop_.open = false;
    loop_.fn = nullptr;
    workers_left_.wait(lock, [this] { return inside_ == 0; });
  }
  owner_.Unlock();
}

void WorkerPool::WorkerMain() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    loop_started_.wait(lock, [&] { return stopping_ || (loop_.open && loop_.generation != seen); });
    if (stopping_) return;
    seen = loop_.generation;
    const absl::FunctionRef<void(size_t)>& fn = *loop_.fn;
    const size_t units = loop_.units;
    ++inside_;
    lock.unlock();
    RunUnits(fn, units);
    lock.lock();
    if (--inside_ == 0 && !loop_.open) workers_left_.notify_one();
  }
}

}  // namespace sparsepool
