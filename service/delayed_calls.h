// Runs functions at given times on threads of its own. The gRPC service uses it to
// answer a request that must wait (memory in its reuse grace, service/pool.h) at the
// right time without holding one of gRPC's threads meanwhile: its handlers run on
// gRPC's threads, and a handler that slept there held up every other request, lease
// renewals included. Several threads, so that one long call (a Create that zeroes
// gigabytes of reused pages) does not hold up the others that fall due meanwhile.
#ifndef SPARSEPOOL_SERVICE_DELAYED_CALLS_H_
#define SPARSEPOOL_SERVICE_DELAYED_CALLS_H_

#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sparsepool {

class DelayedCalls {
 public:
  // `stopping` is true when the call runs early because the daemon is shutting down.
  using Call = std::function<void(bool stopping)>;

  // REQUIRES: threads >= 1.
  explicit DelayedCalls(int threads = 4);
  // Stops (see Stop) and joins the threads.
  ~DelayedCalls();
  DelayedCalls(const DelayedCalls&) = delete;
  DelayedCalls& operator=(const DelayedCalls&) = delete;

  // Runs `call` at `when` (at once if that has passed) on one of the threads. After
  // Stop, runs it at once on the caller's thread with stopping = true.
  void RunAt(absl::Time when, Call call);

  // Makes every waiting call due now (stopping = false): the condition they wait for
  // may have come early (an acknowledgement that frees memory).
  void RunWaitingNow();

  // Runs every waiting call now with stopping = true and returns when they have run:
  // a server shutting down waits for every request it started to be answered.
  void Stop();

  size_t waiting() const;

 private:
  void Main();

  mutable absl::Mutex mu_;
  std::multimap<absl::Time, Call> calls_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  size_t exited_ ABSL_GUARDED_BY(mu_) = 0;  // threads that found nothing left after Stop
  std::vector<std::thread> threads_;  // last: started once everything above exists
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_DELAYED_CALLS_H_
