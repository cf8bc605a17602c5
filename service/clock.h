// Time as the pool sees it, behind an interface so that lease expiry is tested by
// moving a fake clock rather than by sleeping.
#ifndef SPARSEPOOL_SERVICE_CLOCK_H_
#define SPARSEPOOL_SERVICE_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sparsepool {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_CLOCK_H_
