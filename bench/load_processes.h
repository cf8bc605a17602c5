// The processes sparsepool-load starts: its decode workers, and for fault runs the
// daemon itself, so that it can kill and restart it.
#ifndef SPARSEPOOL_BENCH_LOAD_PROCESSES_H_
#define SPARSEPOOL_BENCH_LOAD_PROCESSES_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sparsepool::bench {

class DaemonNetwork;  // bench/load_network.h

// How Spawn starts a process: where its output goes, what it reads, what it adds to
// our environment.
struct SpawnOptions {
  std::string log_path;    // stdout and stderr appended here; empty: ours
  std::string stdin_path;  // read as its stdin; empty: ours
  std::vector<std::string> env;  // NAME=VALUE entries that replace or add to ours
  // Start with no signal blocked and default dispositions. Left false, a child inherits
  // our mask: the workers leave an interrupt to the parent (InterruptWatch). A daemon
  // that outlives a call (CUDA MPS's control daemon) must stay killable.
  bool default_signals = false;
};

// Starts argv[0] (a path, or a name looked up on PATH) with argv.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});

// Starts argv as Spawn does and waits for it: FailedPrecondition naming the command
// and its exit status unless it exits with 0; DeadlineExceeded after killing it
// (SIGKILL) when it runs past `timeout`.
absl::Status RunToCompletion(const std::vector<std::string>& argv, const SpawnOptions& options = {},
                             absl::Duration timeout = absl::InfiniteDuration());

// Where a run's workers keep their files (bench/load_worker.h: ledger, progress, result,
// the stop file) and the tenants' tokens: a directory of the run's own, mode 0700, on
// tmpfs (/dev/shm) where there is one, else under `fallback_parent`. Why tmpfs: a
// worker saves its ledger after every step, and a rename on a disk file system waits
// for the journal (1.15 ms a save on this project's VM's ext4, 0.22 on tmpfs), time
// a tenant's worker would lose between steps. Removed, with what it holds, when it goes,
// unless kept.
class RunDirectory {
 public:
  static absl::StatusOr<std::unique_ptr<RunDirectory>> Make(const std::string& fallback_parent);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  const std::string& path() const { return path_; }
  // Left in place when it goes: a failed run's ledgers are the evidence.
  void Keep() { keep_ = true; }

 private:
  explicit RunDirectory(std::string path) : path_(std::move(path)) {}
  const std::string path_;
  bool keep_ = false;
};

// A sparsepoold the load tool owns: started with the given command line plus a listen
// address and a port file, killed with SIGKILL (no chance to clean up) and started
// again on the address of its first start, as a supervisor restarts a production
// daemon, so that the workers' clients reconnect to it.
class LoadDaemon {
 public:
  // `argv`: the daemon and its flags (region, lease timeout...), without --listen or
  // --port_file. `dir` holds its port file and log. With `network` (which must outlive
  // it) the daemon runs inside it and listens on its address.
  LoadDaemon(std::vector<std::string> argv, std::string dir, const DaemonNetwork* network = nullptr);
  ~LoadDaemon();
  LoadDaemon(const LoadDaemon&) = delete;
  LoadDaemon& operator=(const LoadDaemon&) = delete;

  // Starts it and waits (up to `timeout`) until it serves: it writes its port file only
  // then. FailedPrecondition with its log's tail when it exits first.
  absl::Status Start(absl::Duration timeout = absl::Seconds(30));
  void Kill();
  // Stops it (SIGTERM) and waits for it.
  void Stop();
  const std::string& address() const { return address_; }
  // The running daemon's process id; -1 while it is not running.
  pid_t pid() const { return pid_; }
  std::string LogTail() const;

 private:
  void Wait();

  std::vector<std::string> argv_;
  const DaemonNetwork* network_;
  std::string port_file_;
  std::string log_path_;
  std::string address_;
  pid_t pid_ = -1;
};

// Ctrl-C (SIGINT), SIGTERM and SIGHUP for the load tool's parent: blocked in the
// constructing thread (construct it before any other thread or child, which inherit
// the mask: the workers then leave an interrupt to the parent instead of dying without
// their results) and taken by a thread of its own, which calls `on_signal` with how
// many have come so far. The tool then stops its workers and cleans up what it made
// (the daemon, the network namespace, the control groups) the usual way.
class InterruptWatch {
 public:
  explicit InterruptWatch(std::function<void(int count)> on_signal);
  ~InterruptWatch();
  InterruptWatch(const InterruptWatch&) = delete;
  InterruptWatch& operator=(const InterruptWatch&) = delete;

  bool interrupted() const { return count_.load() > 0; }

 private:
  std::function<void(int)> on_signal_;
  std::atomic<int> count_{0};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// What a process holds that a leak would grow: anonymous resident memory (the
// daemon's own heap, not the region pages it has touched, which are shared file
// memory) and open file descriptors.
struct ProcessFootprint {
  uint64_t rss_anon_bytes = 0;
  uint64_t open_fds = 0;
};
absl::StatusOr<ProcessFootprint> FootprintOf(pid_t pid);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LOAD_PROCESSES_H_
