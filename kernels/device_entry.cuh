// Device helpers every kernel here shares: where a checked token's entry lives, how a
// warp copies an entry, and how the first fault of a launch is recorded.
#ifndef SPARSEPOOL_KERNELS_DEVICE_ENTRY_CUH_
#define SPARSEPOOL_KERNELS_DEVICE_ENTRY_CUH_

#include <cstddef>
#include <cstdint>

#include "kernels/gather_types.h"

namespace sparsepool::kernels {

// Region offset of `token` in one row's layer. REQUIRES: token < rp.tokens.
__device__ inline uint64_t RowEntryOffset(const RowPages& rp, uint32_t token) {
  return rp.page_offsets[token / rp.page_tokens] + uint64_t(token % rp.page_tokens) * rp.entry_stride;
}

// The region a row's entries live in.
__device__ inline const std::byte* RowRegion(const RowPages& rp, const std::byte* launch_region) {
  return rp.region != nullptr ? rp.region : launch_region;
}
// Where the row's record lives: its home region, for a striped sequence's other layers.
__device__ inline const std::byte* RowRecordRegion(const RowPages& rp, const std::byte* launch_region) {
  return rp.record_region != nullptr ? rp.record_region : RowRegion(rp, launch_region);
}

// Keeps the first fault of a launch: kind (GatherFault flag), row, position, index.
__device__ inline void RecordFault(GatherFault* fault, int32_t kind, uint32_t row, uint32_t position,
                                   int32_t index) {
  if (atomicCAS(&fault->flag, 0, kind) == 0) {
    fault->row = static_cast<int32_t>(row);
    fault->position = static_cast<int32_t>(position);
    fault->index = index;
  }
}

// Whether the record at `record_offset` shows sequence `id` live, read now (volatile:
// the daemon changes it behind the GPU's back). Of the two copies, the one with the
// higher generation counts. Unlike the host's check this skips the checksum, so a read
// torn by a concurrent release may still say live: the client's release fence
// (common/release_fence.h), held until the kernel completes, keeps the memory from
// reuse in that case; this check keeps a write out of a sequence released earlier.
__device__ inline bool RecordShowsLive(const std::byte* region, uint64_t record_offset, uint64_t id) {
  // SequenceRecord: generation at byte 0, sequence_id at 8, state at 16; 256 bytes each.
  const volatile uint64_t* first = reinterpret_cast<const volatile uint64_t*>(region + record_offset);
  const volatile uint64_t* second = reinterpret_cast<const volatile uint64_t*>(region + record_offset + 256);
  const volatile uint64_t* current = second[0] > first[0] ? second : first;
  const uint32_t state = *reinterpret_cast<const volatile uint32_t*>(current + 2);
  return current[1] == id && state == 1;  // RecordState::kLive
}

// One warp copies one entry: 16-byte vectors when sizes and addresses allow (656-byte
// entries are 41 of them), bytes otherwise. Each lane loads its vectors of a 64-vector
// chunk before storing any, so a lane's two host loads are in flight together rather
// than one after the other (stores may alias loads as far as the compiler knows).
__device__ inline void CopyEntry(const std::byte* src, std::byte* dst, uint32_t bytes, uint32_t lane) {
  const bool vectors = (bytes % 16 == 0) && (reinterpret_cast<uintptr_t>(src) % 16 == 0) &&
                       (reinterpret_cast<uintptr_t>(dst) % 16 == 0);
  if (vectors) {
    const uint4* s = reinterpret_cast<const uint4*>(src);
    uint4* d = reinterpret_cast<uint4*>(dst);
    const uint32_t n = bytes / 16;
    for (uint32_t base = 0; base < n; base += 64) {
      const uint32_t first = base + lane, second = base + lane + 32;
      uint4 a, b;
      if (first < n) a = s[first];
      if (second < n) b = s[second];
      if (first < n) d[first] = a;
      if (second < n) d[second] = b;
    }
  } else {
    for (uint32_t b = lane; b < bytes; b += 32) dst[b] = src[b];
  }
}

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_DEVICE_ENTRY_CUH_
