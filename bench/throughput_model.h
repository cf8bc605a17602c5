// Decode throughput model (issue 5, first part): for a decode node, the largest batch
// and the tokens per second at a context length, for four ways of keeping the latent
// cache. A 671B-parameter model does not fit on the machines here, so the figures come
// from formulas whose parameters are measured by this project's benchmarks or given;
// docs/throughput_model.md states every formula and the source of every default.
#ifndef SPARSEPOOL_BENCH_THROUGHPUT_MODEL_H_
#define SPARSEPOOL_BENCH_THROUGHPUT_MODEL_H_

#include <cstdint>
#include <string>

namespace sparsepool::bench {

struct ModelShape {
  uint32_t layers = 61;
  uint32_t entry_bytes = 656;        // FP8 MLA latent entry per token and layer
  uint32_t indexer_key_bytes = 132;  // lightning-indexer key per token and layer
  uint32_t top_k = 2048;
};

struct NodeParams {
  double gpu_memory_bytes = 80e9;     // per GPU
  double weights_bytes = 0;           // per GPU, after parallelism
  double reserved_bytes = 8e9;        // activations, workspace, fragmentation
  double hbm_bytes_per_s = 3.0e12;    // read bandwidth, for the indexer's full scan
  double link_bytes_per_s = 47e9;     // pool -> GPU rate of the top-k gather (CXL / host)
  double rdma_bytes_per_s = 25e9;     // pool -> GPU over RDMA (a 200 Gb/s NIC)
  double compute_s_per_token = 20e-6;  // everything but cache traffic, per batch token
  double compute_fixed_s = 10e-3;      // per step, independent of batch
  double cache_slots_per_layer = 4096;  // residency cache capacity per request and layer
  double cache_miss_fraction = 0.13;    // of the top-k, measured on 80%-overlap traces
  uint32_t max_batch = 1024;            // scheduler limit
  // The decode host's memory for pulled prefixes, per GPU (kRdmaPrefixPull).
  double host_memory_bytes = 200e9;
  // Requests arriving per second per GPU, for the queueing of prefix pulls.
  double arrivals_per_s = 1.0;
};

enum class Placement {
  kAllOnGpu,           // latent cache and indexer keys in HBM
  kResidencyCache,     // indexer keys in HBM; latent cache in the pool, hot entries cached
  kPoolTopK,           // indexer keys in HBM; top-k fetched from the pool every step
  kRdmaFullPrefix,     // whole prefix fetched over RDMA every step (a degenerate case)
  kRdmaPrefixPull,     // whole prefix pulled over RDMA once, at admission, into the decode
                       // host's pinned memory; each step's top-k gathered from there
                       // (Mooncake- and LMCache-style pools serving sparse attention)
};

struct Throughput {
  uint32_t batch = 0;           // largest batch that fits (0: not even one request)
  double step_seconds = 0;      // one decode step of that batch: the time between tokens
  double tokens_per_second = 0;
  double link_bytes_per_step = 0;
  std::string limit;            // what capped the batch: "memory", "host memory", "scheduler"
  // Time to first token beyond prefill: what must move before the first decode step
  // (the prefix pull, and its wait behind other arrivals' pulls), plus that step.
  // Infinite when pulls arrive faster than the wire carries them.
  double admission_seconds = 0;  // the transfer and its queueing alone
  double ttft_seconds = 0;
};

// Mean wait of an M/D/1 queue (Poisson arrivals at `rate`, each served in `service`
// seconds): rho * service / (2 (1 - rho)), rho = rate * service; infinite at rho >= 1.
double QueueWaitSeconds(double rate, double service);

// Per-request GPU bytes the placement keeps at `context` tokens.
double GpuBytesPerRequest(const ModelShape& shape, const NodeParams& node, Placement placement,
                          uint64_t context);
Throughput Evaluate(const ModelShape& shape, const NodeParams& node, Placement placement,
                    uint64_t context);
const char* PlacementName(Placement placement);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_THROUGHPUT_MODEL_H_
