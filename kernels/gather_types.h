// The plain structs a top-k gather launch is made of, shared by the launcher (C++) and
// the kernels (CUDA). Nothing here needs Abseil, so nvcc compiles it as it is.
#ifndef SPARSEPOOL_KERNELS_GATHER_TYPES_H_
#define SPARSEPOOL_KERNELS_GATHER_TYPES_H_

#include <cstddef>
#include <cstdint>

namespace sparsepool::kernels {

// Where one batch row's entries of the layer being fetched live, as the GPU sees them.
// The page offsets come from a layout the client validated (every page in the region).
struct RowPages {
  const uint64_t* page_offsets;  // device-readable: region offsets of the layer's pages
  uint64_t tokens;               // valid token indices are [0, tokens)
  uint32_t page_tokens;
  uint32_t entry_stride;
  // The row's sequence and the region offset of its record's two copies: kernels that
  // write check there, right before writing, that the sequence is still live.
  uint64_t sequence_id;
  uint64_t record_offset;
  // Device pointer of the row's region; null: the launch's `region`. (A decode session's
  // rows may live in different regions of the pool.)
  const std::byte* region;
  // Device pointer of the region holding the record, when it is not `region`: a striped
  // sequence's layers live in several regions, its record in the home one. Null: the
  // record is in the row's region.
  const std::byte* record_region;
};
// A row whose page_offsets is null is inactive (a free row of a decode session's batch):
// every kernel skips it without reading its indices' entries or recording faults.

// GatherFault::flag values: what went wrong first.
inline constexpr int32_t kFaultBadIndex = 1;        // past the row's tokens, or below -1
inline constexpr int32_t kFaultDuplicateToken = 2;  // residency cache: a token twice in a row
inline constexpr int32_t kFaultCapacity = 3;        // residency cache: more misses than slots
inline constexpr int32_t kFaultInstance = 4;        // residency cache: instance out of range
inline constexpr int32_t kFaultReleased = 5;        // write-back: the row's sequence was no longer live

// The first bad index a gather met; flag is 0 while none was. Device-writable memory
// (device or mapped pinned host), zeroed before the launch.
struct GatherFault {
  int32_t flag;
  int32_t row;
  int32_t position;
  int32_t index;
};

enum class GatherAlgorithm {
  // One warp per entry, in the order of the indices: the plain baseline.
  kWarpPerEntry,
  // Each row's indices sorted by address on the GPU first, so that entries that share a
  // page, and pages that are neighbours, are read together; several blocks per row.
  kSortedByAddress,
  // The whole batch's entries sorted by address in one device-wide radix sort, so all
  // warps sweep the pool in order together. Pays when pages are scattered over a large
  // pool (+17% over 32 GiB on the H100, docs/gpu.md). Needs `scratch`
  // (GatherScratchBytes); falls back to kSortedByAddress without it.
  kBatchSortedByAddress,
};

struct GatherLaunch {
  const std::byte* region = nullptr;  // device pointer of the registered region
  uint64_t region_bytes = 0;          // every page of every row lies inside it
  const RowPages* rows = nullptr;     // device array [batch]
  const int32_t* indices = nullptr;   // device [batch][k]; -1 = padding, left untouched
  uint32_t batch = 0;
  uint32_t k = 0;
  uint32_t entry_bytes = 0;
  std::byte* out = nullptr;  // device [batch][k][entry_bytes]
  uint64_t out_bytes = 0;
  GatherFault* fault = nullptr;
  // Optional device [batch][k]: each position's flat index into `out` viewed as rows of
  // entry_bytes (row * k + position), -1 for padding, bad indices and inactive rows: the
  // index form FlashMLA's sparse decoding reads.
  int32_t* out_flat = nullptr;
  GatherAlgorithm algorithm = GatherAlgorithm::kSortedByAddress;
  // Upper bound on the blocks the gather occupies (0: enough to fill the GPU). A caller
  // that overlaps the fetch with compute caps it so the compute kernels find SMs.
  uint32_t max_blocks = 0;
  // kSortedByAddress: blocks per row, each copying a slice of the row's sorted entries
  // (0: enough to give every SM about four blocks, at most 16 per row).
  uint32_t slices_per_row = 0;
  // Device memory for kBatchSortedByAddress, at least GatherScratchBytes(batch * k).
  void* scratch = nullptr;
  uint64_t scratch_bytes = 0;
};

// Write-back: the entry of one newly decoded token per row, from HBM into the pool.
// Each row's record is read right before its entry is written: a row whose sequence is
// no longer live is skipped and reported (kFaultReleased).
struct WriteBackLaunch {
  std::byte* region = nullptr;        // device pointer of the registered region
  uint64_t region_bytes = 0;
  const RowPages* rows = nullptr;     // device [batch], the layer being written
  // Device [batch]: token to write; -1 = none for this row. Null: each active row's
  // last token (rp.tokens - 1), the one a decode step appends.
  const int32_t* tokens = nullptr;
  const std::byte* entries = nullptr;  // device [batch][entry_bytes]
  uint32_t batch = 0;
  uint32_t entry_bytes = 0;
  GatherFault* fault = nullptr;       // position is 0; index is the bad token
  // Read each row's record before writing it. A decode session turns this off: its
  // step holds the release fence until it completes and checks every row at its end,
  // so the check (two dependent reads across the link per layer) buys nothing there.
  bool check_record = true;
};

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_GATHER_TYPES_H_
