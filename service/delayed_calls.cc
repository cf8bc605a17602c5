#include "service/delayed_calls.h"

#include <utility>

#include "absl/time/clock.h"

namespace sparsepool {

DelayedCalls::DelayedCalls(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Main(); });
}

DelayedCalls::~DelayedCalls() {
  Stop();
  for (std::thread& thread : threads_) thread.join();
}

void DelayedCalls::RunAt(absl::Time when, Call call) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      calls_.emplace(when, std::move(call));
      return;
    }
  }
  call(/*stopping=*/true);
}

void DelayedCalls::RunWaitingNow() {
  absl::MutexLock lock(&mu_);
  if (calls_.empty()) return;
  std::multimap<absl::Time, Call> due;
  for (auto& [when, call] : calls_) due.emplace(absl::InfinitePast(), std::move(call));
  calls_.swap(due);
}

void DelayedCalls::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  const auto all_exited = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return exited_ == threads_.size();
  };
  mu_.Await(absl::Condition(&all_exited));
}

size_t DelayedCalls::waiting() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

void DelayedCalls::Main() {
  absl::MutexLock lock(&mu_);
  while (true) {
    // One call at a time per thread: a due one (all, once stopping), else sleep until
    // the first is due, an earlier one arrives, or Stop.
    if (!calls_.empty() && (stopping_ || calls_.begin()->first <= absl::Now())) {
      Call call = std::move(calls_.begin()->second);
      calls_.erase(calls_.begin());
      const bool stopping = stopping_;
      mu_.Unlock();
      call(stopping);
      mu_.Lock();
      continue;
    }
    if (stopping_) {
      ++exited_;
      return;
    }
    const absl::Time first = calls_.empty() ? absl::InfiniteFuture() : calls_.begin()->first;
    const auto wake = [this, first]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || (!calls_.empty() && calls_.begin()->first < first);
    };
    mu_.AwaitWithDeadline(absl::Condition(&wake), first);
  }
}

}  // namespace sparsepool
