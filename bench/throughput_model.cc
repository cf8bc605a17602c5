#include "bench/throughput_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sparsepool::bench {

const char* PlacementName(Placement placement) {
  switch (placement) {
    case Placement::kAllOnGpu:
      return "all on GPU";
    case Placement::kResidencyCache:
      return "pool + GPU residency cache";
    case Placement::kPoolTopK:
      return "CXL pool, top-k fetch";
    case Placement::kRdmaFullPrefix:
      return "RDMA pool, full prefix every step";
    case Placement::kRdmaPrefixPull:
      return "RDMA pool, prefix pulled at admission";
  }
  return "?";
}

double GpuBytesPerRequest(const ModelShape& s, const NodeParams& n, Placement placement, uint64_t context) {
  const double keys = double(context) * s.layers * s.indexer_key_bytes;
  const double latent = double(context) * s.layers * s.entry_bytes;
  // A fetched layer's entries live in a decode buffer, two layers deep (one being
  // filled while the other is read).
  const double topk_buffer = 2.0 * s.top_k * s.entry_bytes;
  switch (placement) {
    case Placement::kAllOnGpu:
      return keys + latent;
    case Placement::kResidencyCache:
      return keys + std::min(double(context), n.cache_slots_per_layer) * s.layers * s.entry_bytes;
    case Placement::kPoolTopK:
      return keys + topk_buffer;
    case Placement::kRdmaFullPrefix:
      // The whole prefix of a layer lands in HBM before that layer runs: two deep.
      return keys + 2.0 * double(context) * s.entry_bytes;
    case Placement::kRdmaPrefixPull:
      // The pulled copy is in host memory; HBM holds the keys and the decode buffer.
      return keys + topk_buffer;
  }
  return 0;
}

double QueueWaitSeconds(double rate, double service) {
  const double rho = rate * service;
  if (rho >= 1) return std::numeric_limits<double>::infinity();
  return rho * service / (2 * (1 - rho));
}

Throughput Evaluate(const ModelShape& s, const NodeParams& n, Placement placement, uint64_t context) {
  Throughput t;
  const double free = n.gpu_memory_bytes - n.weights_bytes - n.reserved_bytes;
  const double per_request = GpuBytesPerRequest(s, n, placement, context);
  double fits = free > 0 ? std::floor(free / per_request) : 0;
  t.limit = "memory";
  if (placement == Placement::kRdmaPrefixPull) {
    // Every admitted request's whole cache sits in the decode host's memory.
    const double host_fits = std::floor(n.host_memory_bytes / (double(context) * s.layers * s.entry_bytes));
    if (host_fits < fits) {
      fits = host_fits;
      t.limit = "host memory";
    }
  }
  t.batch = static_cast<uint32_t>(std::min<double>(fits, n.max_batch));
  if (fits >= n.max_batch) t.limit = "scheduler";
  if (t.batch == 0) return t;

  const double selected = std::min<double>(s.top_k, double(context));
  double per_request_link = 0;
  double link_rate = n.link_bytes_per_s;
  switch (placement) {
    case Placement::kAllOnGpu:
      break;
    case Placement::kResidencyCache:
      per_request_link = n.cache_miss_fraction * selected * s.layers * s.entry_bytes;
      break;
    case Placement::kPoolTopK:
      per_request_link = selected * s.layers * s.entry_bytes;
      break;
    case Placement::kRdmaFullPrefix:
      per_request_link = double(context) * s.layers * s.entry_bytes;
      link_rate = n.rdma_bytes_per_s;
      break;
    case Placement::kRdmaPrefixPull:
      // From the local copy over the host's PCIe link, like a top-k fetch from the pool.
      per_request_link = selected * s.layers * s.entry_bytes;
      break;
  }
  // Every placement scores the whole prefix with the indexer (keys read from HBM) and
  // computes; cache traffic over the link overlaps computing (layer l+1 is fetched while
  // layer l runs), so a step takes the longer of the two.
  const double indexer = t.batch * double(context) * s.layers * s.indexer_key_bytes / n.hbm_bytes_per_s;
  const double compute = n.compute_fixed_s + t.batch * n.compute_s_per_token + indexer;
  t.link_bytes_per_step = t.batch * per_request_link;
  const double link = t.link_bytes_per_step / link_rate;
  t.step_seconds = std::max(compute, link);
  t.tokens_per_second = t.batch / t.step_seconds;
  if (placement == Placement::kRdmaPrefixPull) {
    // The pull of every layer's prefix, waiting behind other arrivals' pulls.
    const double pull = double(context) * s.layers * s.entry_bytes / n.rdma_bytes_per_s;
    t.admission_seconds = pull + QueueWaitSeconds(n.arrivals_per_s, pull);
  }
  t.ttft_seconds = t.admission_seconds + t.step_seconds;
  return t;
}

}  // namespace sparsepool::bench
