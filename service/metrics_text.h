// The pool's figures in the Prometheus text exposition format (version 0.0.4), for the
// daemon's /metrics endpoint (service/metrics_http.h): what an operator graphs and
// alerts on (a pool running out of free memory, leases expiring, requests waiting for
// memory in its reuse grace).
#ifndef SPARSEPOOL_SERVICE_METRICS_TEXT_H_
#define SPARSEPOOL_SERVICE_METRICS_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/fair_work_queue.h"
#include "service/pool.h"

namespace sparsepool {

struct DaemonFigures {
  PoolStats pool;
  size_t requests_waiting_for_memory = 0;
  FairWorkQueue::Counters slow_work;  // all zero without the queue (--slow_work_threads=0)
  absl::Duration uptime;
};

std::string MetricsText(const DaemonFigures& figures);

// A label value as the format wants it: backslash, double quote and newline escaped.
std::string EscapeLabelValue(absl::string_view value);

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_METRICS_TEXT_H_
