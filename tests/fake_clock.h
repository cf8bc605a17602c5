// A clock that moves only when a test says so.
#ifndef SPARSEPOOL_TESTS_FAKE_CLOCK_H_
#define SPARSEPOOL_TESTS_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "service/clock.h"

namespace sparsepool::testing {

class FakeClock final : public Clock {
 public:
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_FAKE_CLOCK_H_
