#include "service/release_watch.h"

#include <utility>
#include <vector>

namespace sparsepool {

void ReleaseWatch::Wait(uint64_t seen, absl::Time deadline, Answer answer) {
  uint64_t key = 0;
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_ && waiters_.size() < kMaxWaiting) {
      key = ++next_key_;
      waiters_.emplace(key, Waiter{seen, std::move(answer)});
    }
  }
  if (key == 0) {
    answer(/*stopping=*/false);
    return;
  }
  timer_.RunAt(deadline, [this, key](bool stopping) {
    if (Answer answer = Take(key)) answer(stopping);
  });
}

ReleaseWatch::Answer ReleaseWatch::Take(uint64_t key) {
  absl::MutexLock lock(&mu_);
  auto it = waiters_.find(key);
  if (it == waiters_.end()) return nullptr;
  Answer answer = std::move(it->second.answer);
  waiters_.erase(it);
  return answer;
}

void ReleaseWatch::Notify(uint64_t epoch) {
  std::vector<Answer> due;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.seen < epoch) {
        due.push_back(std::move(it->second.answer));
        waiters_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (Answer& answer : due) answer(/*stopping=*/false);
}

void ReleaseWatch::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  timer_.Stop();  // runs every pending timeout now, which answers what still waits
}

size_t ReleaseWatch::waiting() const {
  absl::MutexLock lock(&mu_);
  return waiters_.size();
}

}  // namespace sparsepool
