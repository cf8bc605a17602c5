// One region of the pool as the daemon sees it: its header, its sequence records and
// its page heap, all kept inside the mapped memory (common/region_format.h), plus an
// in-memory mirror of the records and the free-granule bitmap derived from them.
//
// Opening a region formats it if it is fresh (all zeros) and otherwise recovers every
// intact sequence record, checking page tables against their checksums and against
// each other, so a daemon killed at any moment restarts with every sequence it had
// committed. A header that fails its checks is refused, never repaired.
//
// Not thread-safe: the pool serialises access.
#ifndef SPARSEPOOL_SERVICE_REGION_STORE_H_
#define SPARSEPOOL_SERVICE_REGION_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/layout.h"
#include "common/region_format.h"
#include "service/granule_allocator.h"
#include "transport/cxl/region_mapping.h"

namespace sparsepool {

using SlotIndex = uint32_t;

// What a new sequence looks like; the pool has validated every field.
struct NewSequence {
  SequenceId id = 0;
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  uint32_t entry_stride = 0;
  uint32_t page_tokens = 0;
  uint64_t tokens = 0;
  std::string tenant;
  std::string owner;
  uint64_t now_unix_ns = 0;
  // One stripe of a striped sequence (region_format::SequenceRecord): `layers` are
  // this stripe's. stripe_count 0 or 1: unstriped.
  uint32_t stripe_index = 0;
  uint32_t stripe_count = 0;
  uint32_t sequence_layers = 0;
};

struct RecoveryReport {
  uint32_t sequences = 0;       // records recovered
  uint32_t dropped_records = 0;  // records that failed their checks, with reasons below
  std::vector<std::string> problems;
};

// A region whose id counter is missing (formatted by version 1) or damaged resumes this
// far above the highest id it holds: the ids of sequences evicted before are unknown,
// and no daemon issues four billion between restarts.
inline constexpr uint64_t kUnknownIdsSkip = uint64_t{1} << 32;

class RegionStore {
 public:
  // `record_slots` is used only when the region is fresh and gets formatted.
  static absl::StatusOr<std::unique_ptr<RegionStore>> Open(uint32_t index, MappedRegion mapping,
                                                           uint32_t record_slots,
                                                           uint64_t now_unix_ns,
                                                           RecoveryReport* report);

  RegionStore(const RegionStore&) = delete;
  RegionStore& operator=(const RegionStore&) = delete;

  const RegionRef& ref() const { return ref_; }
  // Every sequence id ever issued on this region is below this (region_format::IdCounter).
  uint64_t id_limit() const { return id_limit_; }
  // Persists a higher limit; call it before issuing ids up to it. REQUIRES:
  // id_limit() < limit <= region_format::kMaxSequenceId.
  void PersistIdLimit(uint64_t limit);
  std::byte* base() const { return mapping_.base(); }
  bool formatted_now() const { return formatted_now_; }

  // Allocates the page table and data pages (zeroed) for seq.tokens tokens and commits
  // the record. REQUIRES: 0 < seq.id < id_limit() (Internal otherwise). ResourceExhausted when the heap has no room (nothing is left
  // allocated), or when every record slot is taken.
  absl::StatusOr<SlotIndex> Create(const NewSequence& seq);

  // Grows a live sequence to `tokens` tokens, allocating pages as needed.
  absl::Status Extend(SlotIndex slot, uint64_t tokens, uint64_t now_unix_ns);

  // Create and Extend in three steps, so that a caller serialising requests can zero
  // reused pages without holding its lock (a long prompt reuses gigabytes): Prepare*
  // reserves the page table and pages (and for a create, a record slot); nothing is
  // committed, so after a crash they are free again. ZeroReusedPages clears the pages
  // an evicted sequence left behind, touching only that reserved memory and no state
  // here. Commit* makes the change exist; Abandon* gives back what a prepared change
  // reserved (a striped sequence whose other stripes found no room). Every prepared
  // change is committed or abandoned; a prepared extend whose sequence was released or
  // reclaimed meanwhile is undone by CommitExtend, which then says so (NotFound).
  struct ReusedPages {
    std::vector<uint64_t> offsets;  // region offsets of pages that held another sequence
    uint64_t page_bytes = 0;
  };
  struct PendingCreate {
    SlotIndex slot = 0;
    region_format::SequenceRecord record;
    std::vector<uint64_t> pages;  // [layers][pages_per_layer]: the daemon's own table
    ReusedPages reused;
  };
  struct PendingExtend {
    SlotIndex slot = 0;
    region_format::SequenceRecord base;   // the record it grows
    region_format::SequenceRecord grown;  // tokens, pages and page table after
    std::vector<uint64_t> new_pages;      // to free if undone
    uint64_t new_table_offset = 0;        // a larger page table, or 0 (grown in place)
    uint64_t replaced_table_offset = 0;   // the page table to free once committed
    uint64_t replaced_table_bytes = 0;
    std::vector<uint64_t> pages;          // [layers][pages_per_layer] after
    ReusedPages reused;
  };
  absl::StatusOr<PendingCreate> PrepareCreate(const NewSequence& seq);
  SlotIndex CommitCreate(const PendingCreate& pending);
  void AbandonCreate(const PendingCreate& pending);
  void AbandonExtend(const PendingExtend& pending);
  absl::StatusOr<PendingExtend> PrepareExtend(SlotIndex slot, uint64_t tokens, uint64_t now_unix_ns);
  absl::Status CommitExtend(const PendingExtend& pending);
  void ZeroReusedPages(const ReusedPages& pages) const;
  void SetState(SlotIndex slot, region_format::RecordState state, uint64_t now_unix_ns);
  // REQUIRES: owner fits the record (ValidateName).
  void SetOwner(SlotIndex slot, absl::string_view owner);
  // Frees the sequence's memory and empties its record.
  void Free(SlotIndex slot);
  // Zeroes every page of the sequence in `slot`, then frees it: for released data that
  // must not stay readable where it is (a region given to other tenants).
  void Erase(SlotIndex slot);

  const region_format::SequenceRecord& record(SlotIndex slot) const { return records_[slot]; }
  std::vector<SlotIndex> OccupiedSlots() const;
  // The record table's size: sequences this region can hold at once.
  uint32_t record_slots() const { return static_cast<uint32_t>(records_.size()); }
  SequenceLayout Layout(SlotIndex slot) const;
  // Heap bytes the sequence holds: data pages and page table.
  uint64_t SequenceBytes(SlotIndex slot) const;
  // Heap bytes `pages` more pages per layer of this shape would take (data only).
  static uint64_t DataBytes(uint32_t layers, uint32_t page_tokens, uint32_t entry_stride,
                            uint64_t pages);

  uint64_t capacity_bytes() const;
  uint64_t free_bytes() const;

 private:
  RegionStore(uint32_t index, MappedRegion mapping);

  // Allocates the pages `r` needs to hold `tokens` and fills its page table. Nothing is
  // committed and nothing zeroed; on failure nothing stays allocated. (The slot of the
  // result is the caller's to set.)
  // `old_pages`: r's page offsets, [layers][pages_per_layer], from the daemon's copy.
  absl::StatusOr<PendingExtend> Grow(region_format::SequenceRecord r, const std::vector<uint64_t>& old_pages,
                                     uint64_t tokens,
                                     uint64_t now_unix_ns);
  // Frees what a pending extend allocated.
  void Undo(const PendingExtend& pending);
  static uint64_t TableBytes(const region_format::SequenceRecord& r);

  absl::Status Format(uint32_t record_slots, uint64_t now_unix_ns);
  absl::Status Recover(RecoveryReport* report);
  // The id limit a recovered region resumes from: its IdCounter, or, for a version-1
  // region (which had none) or one whose two copies are both damaged, a limit far above
  // every recovered id, persisted at once (and the header upgraded to this version).
  void RecoverIdLimit(uint64_t highest_recovered_id, RecoveryReport* report);
  // Checks one recovered record and reserves its granules; an error says why it was dropped.
  absl::Status AdoptRecord(const region_format::SequenceRecord& record);

  const region_format::RegionHeader& header() const;
  region_format::SequenceRecord* RecordCopy(SlotIndex slot, int copy) const;
  uint64_t* PageTable(const region_format::SequenceRecord& record) const;
  uint32_t PageTableChecksum(const region_format::SequenceRecord& record) const;
  // Writes `record` (generation bumped) into the slot's non-current copy.
  void Commit(SlotIndex slot, region_format::SequenceRecord record);

  uint64_t GranuleOffset(uint64_t granule) const;
  uint64_t OffsetGranule(uint64_t offset) const;
  static uint64_t GranulesFor(uint64_t bytes);
  uint64_t PageGranules(const region_format::SequenceRecord& record) const;
  // Region offset of a free run of `bytes` (rounded up to granules). `*still_zero` is
  // set when the run lies wholly in memory nothing has held since the region was
  // formatted, which is still zero: zeroing it again would be pure cost.
  std::optional<uint64_t> AllocateBytes(uint64_t bytes, bool* still_zero = nullptr);
  void FreeBytes(uint64_t offset, uint64_t bytes);

  MappedRegion mapping_;
  RegionRef ref_;
  bool formatted_now_ = false;
  std::unique_ptr<GranuleAllocator> heap_;
  std::vector<region_format::SequenceRecord> records_;  // the current copy of each slot
  std::vector<int> current_copy_;                      // 0 or 1; which copy records_ mirrors
  std::vector<SlotIndex> free_slots_;
  // Every sequence's page offsets, [layers][pages_per_layer], by slot: the daemon's own
  // copy, which it reads at run time. The table in the region (which clients of its
  // tenants can write) is read only at recovery, checksum checked.
  std::vector<std::vector<uint64_t>> pages_;
  uint64_t id_limit_ = 1;
  int id_counter_copy_ = 0;  // which IdCounter copy is current
  uint64_t id_counter_generation_ = 0;
  // Granules at and above this have not been handed out since the format. After a
  // recovery nothing is known about freed memory, so it starts at the heap's end.
  uint64_t never_used_from_ = 0;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_REGION_STORE_H_
