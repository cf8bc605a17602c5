// KeepAlive calls that wait for the pool's next release epoch (a long poll): a fenced
// client learns of a release within a round trip and acknowledges it as soon as its
// writes allow, so released memory waits milliseconds, not a lease-renewal interval.
// Waiting calls hold no thread: each is answered from Notify, from its timeout on a
// timer thread of its own, or at Stop.
//
// Thread-safe.
#ifndef SPARSEPOOL_SERVICE_RELEASE_WATCH_H_
#define SPARSEPOOL_SERVICE_RELEASE_WATCH_H_

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/delayed_calls.h"

namespace sparsepool {

class ReleaseWatch {
 public:
  // `answer(stopping)` runs exactly once per Wait.
  using Answer = std::function<void(bool stopping)>;

  // More waiting calls than this are answered at once (the client polls again later):
  // bounds what idle clients can make the daemon hold.
  static constexpr size_t kMaxWaiting = 1 << 16;

  ReleaseWatch() : timer_(/*threads=*/1) {}

  // Answers when Notify sees an epoch above `seen`, at `deadline`, or at Stop; at once
  // (on the caller's thread) when kMaxWaiting calls already wait or after Stop.
  void Wait(uint64_t seen, absl::Time deadline, Answer answer);
  // Answers every call that waits for an epoch below `epoch`.
  void Notify(uint64_t epoch);
  // Answers every waiting call (stopping = true); later Waits are answered at once.
  void Stop();

  size_t waiting() const;

 private:
  struct Waiter {
    uint64_t seen;
    Answer answer;
  };
  // Takes the waiter out if it is still there, so it is answered once.
  Answer Take(uint64_t key);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_key_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  DelayedCalls timer_;  // last: its thread may call Take until it is destroyed
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_RELEASE_WATCH_H_
