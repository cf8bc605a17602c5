#include "service/delayed_calls.h"

#include <utility>
#include <vector>

#include "absl/time/clock.h"

namespace sparsepool {

DelayedCalls::DelayedCalls() : thread_([this] { Main(); }) {}

DelayedCalls::~DelayedCalls() {
  Stop();
  thread_.join();
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

void DelayedCalls::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  mu_.Await(absl::Condition(&stopped_));
}

size_t DelayedCalls::waiting() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

void DelayedCalls::Main() {
  absl::MutexLock lock(&mu_);
  while (true) {
    // Sleep until the first call is due, a new first call arrives, or Stop.
    const absl::Time first = calls_.empty() ? absl::InfiniteFuture() : calls_.begin()->first;
    const auto wake = [this, first]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || (!calls_.empty() && calls_.begin()->first < first);
    };
    mu_.AwaitWithDeadline(absl::Condition(&wake), first);
    std::vector<Call> due;
    const absl::Time now = absl::Now();
    while (!calls_.empty() && (stopping_ || calls_.begin()->first <= now)) {
      due.push_back(std::move(calls_.begin()->second));
      calls_.erase(calls_.begin());
    }
    const bool stopping = stopping_;
    mu_.Unlock();
    for (Call& call : due) call(stopping);
    mu_.Lock();
    if (stopping_ && calls_.empty()) {
      stopped_ = true;
      return;
    }
  }
}

}  // namespace sparsepool
