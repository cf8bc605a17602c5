#include "common/rate_pacer.h"

#include <algorithm>
#include <chrono>

namespace sparsepool {

RatePacer::RatePacer(uint64_t bytes_per_second, absl::Duration tolerance)
    : bytes_per_second_(std::max<uint64_t>(1, bytes_per_second)),
      tolerance_(std::max(tolerance, absl::ZeroDuration())) {}

absl::Duration RatePacer::Reserve(uint64_t bytes, absl::Time now) {
  const absl::Duration cost = absl::Seconds(static_cast<double>(bytes) / static_cast<double>(bytes_per_second_));
  absl::MutexLock lock(&mu_);
  // Goes when what came before is paid for, less the tolerance; never before now.
  const absl::Time start = std::max(now, paid_until_ - tolerance_);
  paid_until_ = std::max(paid_until_, start) + cost;
  return start - now;
}

absl::Duration RatePacer::Acquire(uint64_t bytes) {
  // The monotonic clock as an absl::Time: only differences between its readings matter.
  const absl::Time now = absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
  const absl::Duration wait = Reserve(bytes, now);
  if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
  return wait;
}

}  // namespace sparsepool
