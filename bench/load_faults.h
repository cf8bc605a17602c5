// Faults sparsepool-load injects while its workers run, each followed by a check that
// nothing was lost or mixed (bench/load_check.h) and that every worker saw its failing
// calls end within their deadline:
//   daemon-kill  SIGKILL the daemon mid-step, start it again on the same regions and
//                address (needs --daemon: the load tool owns it)
//   worker-kill  SIGKILL a worker mid-step (mid-write, as often as not); its sequences
//                stay byte-exact until its lease runs out and the pool reclaims them
//   fill         another client fills the pool until it is refused, holds it full for
//                the outage (taking again what the workers release), lets go: workers'
//                creates and growth are refused (ResourceExhausted) and retried
//   net-cut      the link between the workers and the daemon's host goes down and comes
//                back (needs --daemon, run in a network namespace: bench/load_network.h;
//                root): over UCX every fetch and write crosses it, over CXL the control
//                plane only
#ifndef SPARSEPOOL_BENCH_LOAD_FAULTS_H_
#define SPARSEPOOL_BENCH_LOAD_FAULTS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/load_check.h"
#include "bench/load_network.h"
#include "bench/load_processes.h"

namespace sparsepool::bench {

enum class LoadFault { kDaemonKill, kWorkerKill, kFill, kNetCut };

// "daemon-kill,worker-kill,fill,net-cut" in any order and number; InvalidArgument naming an
// unknown one.
absl::StatusOr<std::vector<LoadFault>> ParseLoadFaults(absl::string_view list);
const char* LoadFaultName(LoadFault fault);

struct FaultRunOptions {
  std::string address;
  std::string dir;  // the workers' files
  // Load before the first fault, and between a fault and its check (the workers'
  // time to recover).
  absl::Duration interval = absl::Seconds(3);
  // How long the daemon stays dead, the pool full, the link down.
  absl::Duration outage = absl::Seconds(1);
  // Every failing call must end within this (the workers' rpc_timeout) plus a second.
  absl::Duration call_deadline = absl::Seconds(10);
  // For a daemon that serves tenants: an operator's token (the checks) and a tenant's
  // of its own for the filler.
  std::string operator_token;
  std::string filler_token;
  // True once the run is interrupted: no further fault is injected.
  std::function<bool()> interrupted = [] { return false; };
};

struct FaultRecord {
  LoadFault fault;
  double at_s = 0;             // since the run began
  std::string what;            // what was done (which worker, how much was filled)
  uint64_t errors = 0;         // failed calls the workers rode out since the fault
  double longest_error_ms = 0;  // the longest any failing call took so far
  LoadCheckReport check;
  bool ok() const { return check.clean(); }
};

// Injects `faults` one after another into a run of workers `pids` (their files in
// options.dir); `daemon` and `network` (the daemon's, for net-cut) may be null when no
// fault needs them. `killed[w]` is set for the
// workers it kills. Each record's check holds a problem for every byte lost or mixed
// and every call that outlived its deadline. An error only when a fault could not be
// injected or checked at all.
absl::StatusOr<std::vector<FaultRecord>> RunLoadFaults(const FaultRunOptions& options,
                                                       const std::vector<LoadFault>& faults, LoadDaemon* daemon,
                                                       DaemonNetwork* network, const std::vector<pid_t>& pids,
                                                       std::vector<bool>& killed);

// The fault table (markdown), one row per record.
std::string FaultTable(const std::vector<FaultRecord>& records);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LOAD_FAULTS_H_
