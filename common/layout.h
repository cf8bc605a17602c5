// Where a sequence's entries live: what GetLayout returns, in plain C++ for the data
// plane. A client holds one per sequence and computes every entry's address from it;
// the daemon is never on the per-token path.
#ifndef SPARSEPOOL_COMMON_LAYOUT_H_
#define SPARSEPOOL_COMMON_LAYOUT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace sparsepool {

using SequenceId = uint64_t;

// A sequence holds at most this many tokens: token indices are int32 everywhere (the
// indexer's top-k, the kernels, the client's FetchTopK).
inline constexpr uint64_t kMaxSequenceTokens = (uint64_t{1} << 31) - 1;
// Tenant names and client ids, as the region's records store them.
inline constexpr size_t kMaxNameBytes = 63;

struct RegionRef {
  uint32_t index = 0;
  std::string kind;  // "shm", "hugetlbfs", "devdax", "numa"
  std::string path;  // what a client maps
  uint64_t size_bytes = 0;
  std::array<uint8_t, 16> uuid{};
  // Set when the daemon publishes the region over UCX (transport/rdma).
  std::string ucx_worker_address;
  std::string ucx_rkey;
  uint64_t remote_base = 0;
  // Set when the daemon serves libibverbs READ/WRITE (--verbs=true).
  uint32_t verbs_rkey = 0;
};

struct SequenceLayout {
  SequenceId sequence_id = 0;
  std::string tenant;
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  uint32_t entry_stride = 0;
  uint32_t page_tokens = 0;
  uint64_t tokens = 0;  // valid token indices are [0, tokens)
  uint32_t pages_per_layer = 0;
  // The sequence's home region: its record, and the pages of every layer when the
  // sequence is not striped.
  RegionRef region;
  // A striped sequence (CreateSequence's `stripes`) spreads its layers round robin over
  // regions of one daemon, several CXL devices or NUMA nodes read at once: layer l
  // lives in stripe l % stripes(), stripe 0 being `region` and stripe s > 0
  // stripe_regions[s - 1]. Empty: every layer lives in `region`.
  std::vector<RegionRef> stripe_regions;
  std::vector<uint64_t> page_offsets;  // [layers][pages_per_layer], offsets in each layer's region
  // Offset in the home region (`region`) of the sequence's record (both copies):
  // clients check there that the sequence is still live after reading its pages
  // (transport/sequence_liveness.h). A striped sequence has one record per stripe; the
  // home one changes state first and is the one clients read.
  uint64_t record_offset = 0;

  uint32_t stripes() const { return 1 + static_cast<uint32_t>(stripe_regions.size()); }
  // The region of stripe `stripe`. REQUIRES: stripe < stripes().
  const RegionRef& StripeRegion(uint32_t stripe) const { return stripe == 0 ? region : stripe_regions[stripe - 1]; }
  // The region holding layer `layer`'s pages. REQUIRES: layer < layers.
  const RegionRef& LayerRegion(uint32_t layer) const { return StripeRegion(layer % stripes()); }

  // Region offset of (layer, token). REQUIRES: layer < layers, token < tokens.
  uint64_t EntryOffset(uint32_t layer, uint64_t token) const {
    return page_offsets[size_t{layer} * pages_per_layer + token / page_tokens] +
           (token % page_tokens) * entry_stride;
  }
  uint64_t PageBytes() const { return uint64_t{page_tokens} * entry_stride; }
  // Tokens from `token` to the end of its page: how far one contiguous run can reach.
  uint64_t TokensLeftInPage(uint64_t token) const { return page_tokens - token % page_tokens; }
};

// Checks that a layout is self-consistent and that every page lies inside its layer's region,
// so that a data plane may compute addresses from it without further checks. A client
// never trusts a layout it has not validated: a wrong one would read another
// sequence's memory or fault.
absl::Status ValidateLayout(const SequenceLayout& layout);

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_LAYOUT_H_
