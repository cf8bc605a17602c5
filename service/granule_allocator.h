// Free-space tracking for a region's heap: a bitmap of fixed-size granules from which
// contiguous runs are handed out (a data page or a page table is one run). The bitmap
// lives only in the daemon's memory; it is rebuilt from the sequence records when a
// daemon starts on a formatted region.
//
// Not thread-safe: the pool serialises access.
#ifndef SPARSEPOOL_SERVICE_GRANULE_ALLOCATOR_H_
#define SPARSEPOOL_SERVICE_GRANULE_ALLOCATOR_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace sparsepool {

class GranuleAllocator {
 public:
  explicit GranuleAllocator(uint64_t granules);

  // First granule of a free run of `count` granules, now marked used; nullopt when no
  // run that long is free. Searches from where the last allocation ended (next fit).
  std::optional<uint64_t> Allocate(uint64_t count);
  // REQUIRES: [first, first + count) was allocated or reserved.
  void Free(uint64_t first, uint64_t count);
  // Marks [first, first + count) used, if all of it is in range and free. Used when
  // rebuilding the bitmap from records: false means two records claim one granule.
  bool Reserve(uint64_t first, uint64_t count);

  uint64_t total_granules() const { return total_; }
  uint64_t free_granules() const { return free_; }

 private:
  bool IsUsed(uint64_t granule) const { return (bits_[granule / 64] >> (granule % 64)) & 1; }
  void Mark(uint64_t first, uint64_t count, bool used);
  // First granule of a free run of `count` that starts in [from, to); nullopt if none.
  std::optional<uint64_t> FindRun(uint64_t from, uint64_t to, uint64_t count) const;

  uint64_t total_;
  uint64_t free_;
  uint64_t hint_ = 0;
  std::vector<uint64_t> bits_;  // 1 = used
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_GRANULE_ALLOCATOR_H_
