#include "client/client_metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sparsepool {

void LatencyHistogram::Observe(double seconds) {
  const auto bucket = std::lower_bound(kFetchSecondsBuckets.begin(), kFetchSecondsBuckets.end(), seconds);
  ++counts[bucket - kFetchSecondsBuckets.begin()];
  ++count;
  sum_seconds += seconds;
}

void LatencyHistogram::Add(const LatencyHistogram& other) {
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  count += other.count;
  sum_seconds += other.sum_seconds;
}

void TransportCounters::Add(const TransportCounters& other) {
  fetch_calls += other.fetch_calls;
  fetch_errors += other.fetch_errors;
  entries_fetched += other.entries_fetched;
  bytes_fetched += other.bytes_fetched;
  write_calls += other.write_calls;
  write_errors += other.write_errors;
  bytes_written += other.bytes_written;
}

void ClientMetrics::Add(const ClientMetrics& other) {
  for (const auto& [name, counters] : other.transports) transports[name].Add(counters);
  if (fetch_seconds_by_layer.size() < other.fetch_seconds_by_layer.size()) {
    fetch_seconds_by_layer.resize(other.fetch_seconds_by_layer.size());
  }
  for (size_t layer = 0; layer < other.fetch_seconds_by_layer.size(); ++layer) {
    fetch_seconds_by_layer[layer].Add(other.fetch_seconds_by_layer[layer]);
  }
  layouts_refreshed += other.layouts_refreshed;
  stale_layout_refusals += other.stale_layout_refusals;
  step_growth_waits += other.step_growth_waits;
  fetch_paced_seconds += other.fetch_paced_seconds;
}

std::string ClientMetricsText(const ClientMetrics& m) {
  std::string out;
  const auto counter = [&](const char* name, const char* help, auto field) {
    absl::StrAppend(&out, "# HELP sparsepool_client_", name, " ", help, "\n# TYPE sparsepool_client_", name,
                    " counter\n");
    for (const auto& [transport, counters] : m.transports) {
      absl::StrAppend(&out, "sparsepool_client_", name, "{transport=\"", transport, "\"} ", counters.*field, "\n");
    }
  };
  counter("fetch_calls_total", "FetchTopK calls (one layer of a batch each).", &TransportCounters::fetch_calls);
  counter("fetch_errors_total", "FetchTopK calls that failed.", &TransportCounters::fetch_errors);
  counter("entries_fetched_total", "Selected entries delivered.", &TransportCounters::entries_fetched);
  counter("fetched_bytes_total", "Bytes of entries delivered.", &TransportCounters::bytes_fetched);
  counter("write_calls_total", "Writes (WriteEntries; WriteStep per row and layer).", &TransportCounters::write_calls);
  counter("write_errors_total", "Writes that failed.", &TransportCounters::write_errors);
  counter("written_bytes_total", "Bytes of entries written.", &TransportCounters::bytes_written);
  // One value over the whole client, not by transport.
  const auto single = [&](const char* name, const char* help, auto value) {
    absl::StrAppend(&out, "# HELP sparsepool_client_", name, " ", help, "\n# TYPE sparsepool_client_", name,
                    " counter\nsparsepool_client_", name, " ", value, "\n");
  };
  single("layouts_refreshed_total", "Cached layouts asked for again: the sequence grew under the cache.",
         m.layouts_refreshed);
  single("stale_layout_refusals_total",
         "Data-plane calls refused on a cached layout that no longer held (released, or its RDMA peer gone).",
         m.stale_layout_refusals);
  single("step_growth_waits_total", "WriteStep rows that waited for growth: no room was reserved ahead.",
         m.step_growth_waits);
  single("fetch_paced_seconds_total",
         "Time FetchTopK and PaceFetch calls (a decode session's steps) waited for the client's fetch rate "
         "(ClientOptions::fetch_bytes_per_second).",
         m.fetch_paced_seconds);
  absl::StrAppend(&out,
                  "# HELP sparsepool_client_fetch_duration_seconds Successful FetchTopK calls by layer.\n"
                  "# TYPE sparsepool_client_fetch_duration_seconds histogram\n");
  for (size_t layer = 0; layer < m.fetch_seconds_by_layer.size(); ++layer) {
    const LatencyHistogram& h = m.fetch_seconds_by_layer[layer];
    if (h.count == 0) continue;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kFetchSecondsBuckets.size(); ++i) {
      cumulative += h.counts[i];
      absl::StrAppendFormat(&out, "sparsepool_client_fetch_duration_seconds_bucket{layer=\"%d\",le=\"%g\"} %d\n",
                            layer, kFetchSecondsBuckets[i], cumulative);
    }
    absl::StrAppendFormat(&out,
                          "sparsepool_client_fetch_duration_seconds_bucket{layer=\"%d\",le=\"+Inf\"} %d\n"
                          "sparsepool_client_fetch_duration_seconds_sum{layer=\"%d\"} %.9g\n"
                          "sparsepool_client_fetch_duration_seconds_count{layer=\"%d\"} %d\n",
                          layer, h.count, layer, h.sum_seconds, layer, h.count);
  }
  return out;
}

std::string ResidencyCacheText(uint64_t hits, uint64_t misses) {
  return absl::StrCat(
      "# HELP sparsepool_client_cache_hits_total Selected entries the GPU residency cache held.\n"
      "# TYPE sparsepool_client_cache_hits_total counter\nsparsepool_client_cache_hits_total ",
      hits,
      "\n# HELP sparsepool_client_cache_misses_total Selected entries the GPU residency cache fetched from the "
      "pool.\n# TYPE sparsepool_client_cache_misses_total counter\nsparsepool_client_cache_misses_total ",
      misses, "\n");
}

}  // namespace sparsepool
