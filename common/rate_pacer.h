// Paces a stream of work to a rate (bytes a second) shared by every thread that calls
// it: each call is let through when the calls before it have been paid for, so over any
// stretch the bytes let through are at most the rate's worth plus one call and the
// tolerance. The generic cell rate algorithm (GCRA), kept as one time: when the work
// let through so far will have been paid for.
//
// Why: on a decode host, tenants' copies contend for memory bandwidth, which CPU
// groups do not divide and which only the hardware's memory bandwidth allocation
// (resctrl) bounds; a client that paces its own fetches bounds what its tenant draws
// where that is absent (docs/reliability.md).
#ifndef SPARSEPOOL_COMMON_RATE_PACER_H_
#define SPARSEPOOL_COMMON_RATE_PACER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sparsepool {

class RatePacer {
 public:
  // `bytes_per_second`: at least 1 (0 is taken as 1). `tolerance`: how far ahead of its
  // pay the stream may run, which lets calls that come in bursts through together (a
  // negative one is taken as none).
  RatePacer(uint64_t bytes_per_second, absl::Duration tolerance);

  // Books `bytes` at `now` and returns how long the caller waits before it may do them
  // (zero when the stream is within its rate): the first call after an idle stretch
  // goes at once, and the calls after it wait for it to be paid for. `now` must not go
  // back between calls: Acquire's is the monotonic clock's.
  absl::Duration Reserve(uint64_t bytes, absl::Time now);

  // Reserve at the monotonic clock's time (a wall clock set back would hold the stream
  // for as long), then sleeps that long; returns the wait.
  absl::Duration Acquire(uint64_t bytes);

  uint64_t bytes_per_second() const { return bytes_per_second_; }

 private:
  const uint64_t bytes_per_second_;
  const absl::Duration tolerance_;
  absl::Mutex mu_;
  absl::Time paid_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_RATE_PACER_H_
