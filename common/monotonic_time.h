// The monotonic clock as an absl::Time: for intervals and deadlines that must not move
// when the wall clock is set. Only differences between its readings mean anything; every
// process on the host reads the same clock (CLOCK_MONOTONIC).
#ifndef SPARSEPOOL_COMMON_MONOTONIC_TIME_H_
#define SPARSEPOOL_COMMON_MONOTONIC_TIME_H_

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sparsepool {

inline absl::Time MonotonicNow() {
  return absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_MONOTONIC_TIME_H_
