#include "common/release_fence.h"

#include "absl/strings/str_cat.h"

namespace sparsepool {

ReleaseFence::Ticket& ReleaseFence::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    Done();
    fence_ = other.fence_;
    generation_ = other.generation_;
    other.fence_ = nullptr;
  }
  return *this;
}

void ReleaseFence::Ticket::Done() {
  if (fence_ == nullptr) return;
  fence_->Exit(generation_);
  fence_ = nullptr;
}

ReleaseFence::Ticket ReleaseFence::Enter() {
  absl::MutexLock lock(&mu_);
  ++active_[generation_];
  return Ticket(this, generation_);
}

absl::StatusOr<ReleaseFence::Ticket> ReleaseFence::TryEnter() {
  absl::MutexLock lock(&mu_);
  if (!refused_.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "writes are refused: the daemon does not fence this connection's writes against releases now (",
        refused_.message(), "), so a write could land in memory it has reused; they resume once it does"));
  }
  ++active_[generation_];
  return Ticket(this, generation_);
}

void ReleaseFence::Refuse(const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  refused_ = why.ok() ? absl::UnknownError("refused") : why;
}

void ReleaseFence::Admit() {
  absl::MutexLock lock(&mu_);
  refused_ = absl::OkStatus();
}

void ReleaseFence::Exit(uint64_t generation) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(generation);
  if (--it->second == 0) active_.erase(it);
  Settle();
}

void ReleaseFence::Observe(ReleaseEpoch latest) {
  absl::MutexLock lock(&mu_);
  if (latest == observed_ || latest.incarnation == 0) return;
  // Writes that enter from now on check liveness after the daemon published `latest`:
  // only those of earlier generations must finish before it is acknowledged.
  observed_ = latest;
  ++generation_;
  pending_.push_back(Pending{generation_, latest});
  Settle();
}

void ReleaseFence::Settle() {
  const uint64_t oldest_active = active_.empty() ? generation_ : active_.begin()->first;
  while (!pending_.empty() && pending_.front().boundary <= oldest_active) {
    acknowledgeable_ = pending_.front().epoch;
    pending_.pop_front();
  }
}

ReleaseEpoch ReleaseFence::Acknowledgeable() {
  absl::MutexLock lock(&mu_);
  return acknowledgeable_;
}

ReleaseEpoch ReleaseFence::Observed() {
  absl::MutexLock lock(&mu_);
  return observed_;
}

bool ReleaseFence::AwaitDrained(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&drained), timeout);
}

int64_t ReleaseFence::in_flight() {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [generation, count] : active_) total += count;
  return total;
}

}  // namespace sparsepool
