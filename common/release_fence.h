// The client's half of write safety: no write of this client can land in memory the
// daemon has given to another sequence, whatever the timing.
//
// The race it closes: a writer checks that its sequence is live (the record in the
// region says so) and starts copying; meanwhile another client releases the sequence,
// and the daemon hands its pages to a new one. The daemon numbers its releases (release
// epochs, per daemon incarnation) and reuses memory released at epoch e only when every
// fenced client has acknowledged e. A client acknowledges e only when every write it
// started before it learned of e has finished. A write that starts after that learns
// the release from the record (the daemon commits the release there before the epoch
// is published), so it writes nothing. Hence: every write either saw its sequence live
// before the release and finished before the memory was reused, or saw the release.
//
// Writes hold a Ticket from before their liveness check until their bytes have landed
// (CPU stores done, RDMA writes completed remotely, a GPU kernel finished). The lease
// loop (client.cc) feeds Observe with what the daemon answers and sends Acknowledgeable
// back.
//
// Thread-safe. Cheap: one uncontended mutex per write, never per entry.
#ifndef SPARSEPOOL_COMMON_RELEASE_FENCE_H_
#define SPARSEPOOL_COMMON_RELEASE_FENCE_H_

#include <cstdint>
#include <deque>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sparsepool {

// A daemon's release epoch: `epoch` counts its releases since it started as
// `incarnation` (random, never 0). {0, 0} names nothing.
struct ReleaseEpoch {
  uint64_t incarnation = 0;
  uint64_t epoch = 0;
  bool operator==(const ReleaseEpoch& o) const { return incarnation == o.incarnation && epoch == o.epoch; }
  bool operator!=(const ReleaseEpoch& o) const { return !(*this == o); }
};

class ReleaseFence {
 public:
  // A write in flight, from before its liveness check until its bytes have landed.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept : fence_(other.fence_), generation_(other.generation_) { other.fence_ = nullptr; }
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { Done(); }
    // Ends the write now (the destructor does otherwise).
    void Done();

   private:
    friend class ReleaseFence;
    Ticket(ReleaseFence* fence, uint64_t generation) : fence_(fence), generation_(generation) {}
    ReleaseFence* fence_ = nullptr;
    uint64_t generation_ = 0;
  };

  ReleaseFence() = default;
  ReleaseFence(const ReleaseFence&) = delete;
  ReleaseFence& operator=(const ReleaseFence&) = delete;

  Ticket Enter();
  // Enter, unless the daemon refused to fence this connection (Refuse): then
  // FailedPrecondition saying so, and no write may start.
  absl::StatusOr<Ticket> TryEnter();
  // The lease loop's word on whether the daemon fences this connection: Refuse when it
  // refused the connection's fence session (a session dropped as stale whose return was
  // refused, for one): the daemon then reuses released memory without waiting for this
  // connection's writes, so none may start until Admit (its session accepted again).
  void Refuse(const absl::Status& why);
  void Admit();

  // The daemon's latest epoch, as it answered. A new incarnation counts as new too: a
  // restarted daemon must not take writes begun under its predecessor as acknowledged.
  void Observe(ReleaseEpoch latest);
  // The newest observed epoch that every write begun before its observation has left;
  // {0, 0} when there is none yet.
  ReleaseEpoch Acknowledgeable();
  // The newest epoch observed.
  ReleaseEpoch Observed();
  // Waits until Acknowledgeable() == Observed() or `timeout` passes; returns whether it
  // came to that.
  bool AwaitDrained(absl::Duration timeout);
  // Writes in flight now.
  int64_t in_flight();

 private:
  void Exit(uint64_t generation);
  void Settle() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::Status refused_ ABSL_GUARDED_BY(mu_);  // OK while the daemon fences this connection
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, int64_t> active_ ABSL_GUARDED_BY(mu_);  // writes in flight per generation
  // Observations not yet acknowledgeable: each waits for every write of a generation
  // below `boundary`.
  struct Pending {
    uint64_t boundary;
    ReleaseEpoch epoch;
  };
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  ReleaseEpoch observed_ ABSL_GUARDED_BY(mu_);
  ReleaseEpoch acknowledgeable_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_RELEASE_FENCE_H_
