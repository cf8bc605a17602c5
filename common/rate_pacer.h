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
//
// The time may live in a file instead (OpenShared): then every pacer that opens the
// file, in any process on the host, books on one stream, and the rate is theirs
// together. A tenant's decode workers on a host so share its rate as their demand
// goes, instead of each holding a fixed part of it that the others cannot use.
#ifndef SPARSEPOOL_COMMON_RATE_PACER_H_
#define SPARSEPOOL_COMMON_RATE_PACER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sparsepool {

class RatePacer {
 public:
  // A pacer of this process's own. `bytes_per_second`: at least 1 (0 is taken as 1).
  // `tolerance`: how far ahead of its pay the stream may run, which lets calls that
  // come in bursts through together (taken within [0, 1 h]).
  RatePacer(uint64_t bytes_per_second, absl::Duration tolerance);
  // A pacer whose time is kept in the file at `path`, shared with every pacer that
  // opens it; the file is made (mode 0600, whole, by a link) when absent. It must be on
  // a tmpfs such as /dev/shm (the time is the boot's monotonic clock's), this user's
  // and no one else's to write. Each pacer books its calls at its own rate and
  // tolerance: give them all the same. InvalidArgument for a file that is not such a
  // pacer's (left as it is); the system's error otherwise.
  static absl::StatusOr<std::unique_ptr<RatePacer>> OpenShared(const std::string& path, uint64_t bytes_per_second,
                                                               absl::Duration tolerance);
  ~RatePacer();
  RatePacer(const RatePacer&) = delete;
  RatePacer& operator=(const RatePacer&) = delete;

  // Books `bytes` at `now` and returns how long the caller waits before it may do them
  // (zero when the stream is within its rate): the first call after an idle stretch
  // goes at once, and the calls after it wait for it to be paid for. `now` must not go
  // back between calls, and for a shared pacer must be the monotonic clock's as
  // Acquire reads it (the host's, the same in every process).
  absl::Duration Reserve(uint64_t bytes, absl::Time now);

  // Reserve at the monotonic clock's time (a wall clock set back would hold the stream
  // for as long), then sleeps that long; returns the wait.
  absl::Duration Acquire(uint64_t bytes);

  uint64_t bytes_per_second() const { return bytes_per_second_; }
  // The file a shared pacer keeps its time in; empty for a pacer of its own.
  const std::string& path() const { return path_; }

 private:
  RatePacer(uint64_t bytes_per_second, absl::Duration tolerance, std::string path, void* mapping, int64_t* paid_until);

  const uint64_t bytes_per_second_;
  const int64_t tolerance_ns_;
  const std::string path_;
  void* const mapping_ = nullptr;  // the shared file's, unmapped by the destructor
  // When the work let through so far will have been paid for, in nanoseconds of the
  // time Reserve is given; read and moved on with atomic operations (lock-free, so
  // that they work between processes too).
  int64_t own_paid_until_ns_;
  int64_t* const paid_until_ns_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_RATE_PACER_H_
