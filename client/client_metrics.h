// What the client library counts, for the engine to export beside its own metrics
// (Client::Metrics): fetches and writes per transport (calls, errors, entries, bytes),
// the latency of each layer's fetch (a histogram per layer), and cached layouts that
// no longer held (refreshed because the sequence grew under the cache, or refused by
// the data plane because it was released or its RDMA peer is gone). A GPU decode
// session's residency cache counts its hits and misses on the device
// (DecodeSession::cache_counters; ResidencyCacheText renders them).
//
// ClientMetricsText renders them in Prometheus' text format (names sparsepool_client_*),
// ready to append to an engine's own /metrics.
#ifndef SPARSEPOOL_CLIENT_CLIENT_METRICS_H_
#define SPARSEPOOL_CLIENT_CLIENT_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sparsepool {

// Upper bounds of the fetch-latency buckets, seconds: 10 us to 1 s, about 2.5x apart
// (a batch-1 layer over CXL takes tens of microseconds; a batch-64 layer over a network
// tens of milliseconds).
inline constexpr std::array<double, 12> kFetchSecondsBuckets = {10e-6,  25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
                                                                 1e-3,   2.5e-3, 5e-3, 10e-3, 100e-3, 1.0};

struct LatencyHistogram {
  // counts[i]: observations <= kFetchSecondsBuckets[i] and above the bucket before;
  // the last: above every bound.
  std::array<uint64_t, kFetchSecondsBuckets.size() + 1> counts{};
  uint64_t count = 0;
  double sum_seconds = 0;

  void Observe(double seconds);
  void Add(const LatencyHistogram& other);
};

struct TransportCounters {
  // FetchTopK calls that reached the data plane (one layer of a batch each; a batch
  // over several cluster nodes counts once per node), and those of them that failed.
  uint64_t fetch_calls = 0;
  uint64_t fetch_errors = 0;
  uint64_t entries_fetched = 0;  // selected entries delivered (padding not counted)
  uint64_t bytes_fetched = 0;
  uint64_t write_calls = 0;  // WriteEntries, and WriteStep's per layer and row
  uint64_t write_errors = 0;
  uint64_t bytes_written = 0;

  void Add(const TransportCounters& other);
};

struct ClientMetrics {
  std::map<std::string, TransportCounters> transports;  // "cxl", "ucx", "verbs"
  // Successful fetches' latency, by layer (index); layers past the last fetched absent.
  std::vector<LatencyHistogram> fetch_seconds_by_layer;
  // A cached layout asked for again because a call named tokens past it (another
  // client grew the sequence).
  uint64_t layouts_refreshed = 0;
  // Data-plane calls refused on a cached layout that no longer held, once per call:
  // NotFound (the sequence was released) or Unavailable (the RDMA peer it names is
  // unreachable: gone, restarted, or cut off by the network); the layout is dropped.
  uint64_t stale_layout_refusals = 0;
  // WriteStep rows whose room was gone, so that the step waited for an ExtendSequence
  // (or a growth ahead still in flight) instead of finding room reserved ahead: each
  // one is a step with the daemon on its path. A request created with only its
  // prompt's room costs one at its first step.
  uint64_t step_growth_waits = 0;
  // Seconds FetchTopK calls waited before copying, and PaceFetch calls (a decode
  // session's steps) before they went, held to the client's fetch rate
  // (ClientOptions::fetch_bytes_per_second); not in fetch_seconds_by_layer.
  double fetch_paced_seconds = 0;

  void Add(const ClientMetrics& other);
};

// Prometheus text exposition: counters per transport, a histogram per layer.
std::string ClientMetricsText(const ClientMetrics& metrics);
// A GPU decode session's residency cache (DecodeSession::cache_counters), in the same
// format: sparsepool_client_cache_{hits,misses}_total.
std::string ResidencyCacheText(uint64_t hits, uint64_t misses);

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_CLIENT_METRICS_H_
