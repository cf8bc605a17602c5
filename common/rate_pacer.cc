#include "common/rate_pacer.h"

#include <algorithm>

namespace sparsepool {

RatePacer::RatePacer(uint64_t bytes_per_second, absl::Duration tolerance)
    : bytes_per_second_(std::max<uint64_t>(1, bytes_per_second)), tolerance_(tolerance) {}

absl::Duration RatePacer::Reserve(uint64_t bytes, absl::Time now) {
  const absl::Duration cost = absl::Seconds(static_cast<double>(bytes) / static_cast<double>(bytes_per_second_));
  absl::MutexLock lock(&mu_);
  // Goes when what came before is paid for, less the tolerance; never before now.
  const absl::Time start = std::max(now, paid_until_ - tolerance_);
  paid_until_ = std::max(paid_until_, start) + cost;
  return start - now;
}

absl::Duration RatePacer::Acquire(uint64_t bytes) {
  const absl::Duration wait = Reserve(bytes, absl::Now());
  if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
  return wait;
}

}  // namespace sparsepool
