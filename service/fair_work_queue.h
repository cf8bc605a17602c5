// The daemon's slow work, taken in turns by tenant: creates and growths, which may
// zero reused pages (a 64 MiB sequence is milliseconds of memset, a large one tens).
//
// Why not on gRPC's threads, where every other call is handled: those threads serve
// every call of every tenant, so a tenant creating large sequences in a loop held them
// all, and a quiet tenant's growth, its lease renewals and its layouts waited behind
// the flood. Here each tenant has a queue of its own and the threads take one call
// from each tenant that has work, in turn (round robin by call): a tenant's call waits
// for at most one call of each other tenant per turn, however many the others have
// queued.
//
// Two classes. Growth is urgent: a decode step waits for it when the client's
// reservation ran out. A create is a new request's admission, which can wait a turn.
// Urgent work is taken before any bulk work, and bulk work never takes the last thread
// (with two or more), so a growth waits for no create, queued or running.
//
// The queues are bounded, one tenant's and all together: past the bound a call is
// refused at once (ResourceExhausted, saying so) instead of waiting without end behind
// a queue that only grows (admission control: a saturated daemon sheds work rather
// than latency).
#ifndef SPARSEPOOL_SERVICE_FAIR_WORK_QUEUE_H_
#define SPARSEPOOL_SERVICE_FAIR_WORK_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace sparsepool {

class FairWorkQueue {
 public:
  struct Options {
    int threads = 2;
    // Calls waiting (not running), each class counted apart: one tenant's, and all
    // tenants' together. A flood of creates cannot fill the room growths need.
    size_t max_queued_per_tenant = 256;
    size_t max_queued = 4096;
  };
  // `stopping` is true when the work runs because the queue is stopping: it must only
  // answer its call (Unavailable), not do the work.
  using Work = std::function<void(bool stopping)>;
  enum class Class { kUrgent, kBulk };
  // kAdmitted: a call admitted once already and coming back (a request that waited for
  // memory), which the bounds must not refuse now that it can be served.
  enum class Admission { kBounded, kAdmitted };

  struct Counters {
    uint64_t queued = 0;   // waiting now
    uint64_t running = 0;  // on a thread now
    uint64_t done = 0;     // run to the end (stopping or not)
    uint64_t refused = 0;  // refused by the bounds
  };

  // REQUIRES: options.threads >= 1, both bounds >= 1.
  explicit FairWorkQueue(Options options);
  // Stops (see Stop) and joins the threads.
  ~FairWorkQueue();
  FairWorkQueue(const FairWorkQueue&) = delete;
  FairWorkQueue& operator=(const FairWorkQueue&) = delete;

  // Queues `work` behind `tenant`'s earlier work of its class; it runs on one of the
  // threads in `tenant`'s turn of that class. ResourceExhausted, naming the bound, when `tenant`'s queue or the
  // whole queue is full (`work` is dropped unrun: the caller answers its call with the
  // error). After Stop, runs `work` at once on the caller's thread with stopping = true.
  absl::Status Submit(absl::string_view tenant, Class work_class, Work work,
                      Admission admission = Admission::kBounded);

  // Runs every queued call with stopping = true, waits for those running to end and
  // returns: a server shutting down waits for every request it started to be answered.
  void Stop();

  Counters counters() const;

 private:
  // One class's queues: a queue per tenant, and the tenants with queued work in the
  // order their turns come (each at most once).
  struct Lanes {
    absl::flat_hash_map<std::string, std::deque<Work>> queues;
    std::deque<std::string> turns;
    size_t queued = 0;
    Work TakeNext();  // REQUIRES: !turns.empty()
  };

  void Main();
  // A thread may take bulk work unless that would leave no thread for urgent work.
  bool MayTakeBulk() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  Lanes urgent_ ABSL_GUARDED_BY(mu_);
  Lanes bulk_ ABSL_GUARDED_BY(mu_);
  size_t bulk_running_ ABSL_GUARDED_BY(mu_) = 0;
  Counters counters_ ABSL_GUARDED_BY(mu_);  // but `queued`, which counters() takes from the lanes
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  size_t exited_ ABSL_GUARDED_BY(mu_) = 0;  // threads that found nothing left after Stop
  std::vector<std::thread> threads_;  // last: started once everything above exists
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_FAIR_WORK_QUEUE_H_
