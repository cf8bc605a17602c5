// The check sparsepool-load makes after every fault: each sequence the pool reports
// live that belongs to a load worker is byte-exact wherever that worker's ledger says
// the pool acknowledged a write (bench/load_ledger.h), and everything else the pool
// holds of a worker, or no longer holds, is explained by the ledger (a create whose
// answer was lost, a release asked for, a dead worker's lease run out). Run while the
// workers are stopped (SIGSTOP), so that ledgers and pool stand still.
#ifndef SPARSEPOOL_BENCH_LOAD_CHECK_H_
#define SPARSEPOOL_BENCH_LOAD_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "bench/load_ledger.h"
#include "client/sparsepool_client.h"

namespace sparsepool::bench {

struct LoadWorkerLedger {
  int worker = 0;
  LoadLedger ledger;
  bool alive = true;  // false once killed: its sequences may have been reclaimed
};

struct LoadCheckReport {
  uint64_t sequences_checked = 0;  // live, owned by a worker, bytes compared
  uint64_t bytes_checked = 0;
  uint64_t reclaimed = 0;   // lines of dead workers whose sequences the pool let go
  uint64_t unledgered = 0;  // pool sequences of a worker explained by a create in flight or lost
  // What is wrong, one line each (lost, mixed or unexplained bytes); empty when clean.
  std::vector<std::string> problems;

  bool clean() const { return problems.empty(); }
  std::string Summary() const;
};

// Lists the pool's sequences at `address` (ListSequences, `timeout`), then checks them
// against the ledgers, reading every acknowledged entry through `reader` (any client of
// that daemon). An error only when the pool cannot be asked; what the check finds is
// in the report.
// `operator_token`: for a daemon that serves tenants, an operator's (who may list every
// tenant's sequences); `reader` then carries it too.
absl::StatusOr<LoadCheckReport> CheckPoolAgainstLedgers(const std::string& address, absl::Duration timeout,
                                                        Client& reader,
                                                        absl::Span<const LoadWorkerLedger> workers,
                                                        const std::string& operator_token = "");

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LOAD_CHECK_H_
