// Runs a function every `interval` on a thread of its own until destroyed; the
// destructor wakes the thread and joins it, so no call is in flight afterwards.
#ifndef SPARSEPOOL_COMMON_PERIODIC_THREAD_H_
#define SPARSEPOOL_COMMON_PERIODIC_THREAD_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sparsepool {

class PeriodicThread {
 public:
  PeriodicThread(absl::Duration interval, std::function<void()> tick)
      : interval_(interval), tick_(std::move(tick)), thread_([this] { Run(); }) {}
  ~PeriodicThread() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
      wake_.Signal();
    }
    thread_.join();
  }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

 private:
  void Run() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (!stop_) wake_.WaitWithTimeout(&mu_, interval_);
        if (stop_) return;
      }
      tick_();
    }
  }

  const absl::Duration interval_;
  const std::function<void()> tick_;
  absl::Mutex mu_;
  absl::CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once everything above is initialised
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_PERIODIC_THREAD_H_
