// sparsepool-load's "where the time went" table: for the whole run and each tenant, the
// workers' time a step by phase of their loop (what the step's clock leaves out beside
// the steps), and the steps split into their wait for the fetch and the rest. It places
// a tenant's slowness: in its steps, or in the daemon's turns for its creates, or in
// its own CPU work between steps.
#ifndef SPARSEPOOL_BENCH_LOAD_TIME_TABLE_H_
#define SPARSEPOOL_BENCH_LOAD_TIME_TABLE_H_

#include <string>
#include <utility>
#include <vector>

#include "bench/load_worker.h"

namespace sparsepool::bench {

// A markdown table with a row for each (name, merged results) group.
std::string LoadTimeTable(const std::vector<std::pair<std::string, const LoadWorkerResult*>>& groups);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LOAD_TIME_TABLE_H_
