#include "service/region_store.h"

#include <unistd.h>

#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"

namespace sparsepool {
namespace {

using region_format::RecordState;
using region_format::SequenceRecord;
using ::testing::HasSubstr;

class RegionStoreTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kIdsIssued = 1000;

  void SetUp() override {
    spec_.kind = RegionKind::kShm;
    spec_.path = absl::StrCat(testing::TestTempDir(), "/region-",
                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    spec_.size_bytes = 32 << 20;
    unlink(spec_.path.c_str());
  }
  void TearDown() override { unlink(spec_.path.c_str()); }

  std::unique_ptr<RegionStore> Open(RecoveryReport* report = nullptr) {
    RecoveryReport ignored;
    auto mapping = MappedRegion::OpenOrCreate(spec_);
    EXPECT_TRUE(mapping.ok()) << mapping.status();
    auto store = RegionStore::Open(0, *std::move(mapping), 16, 1000, report ? report : &ignored);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return nullptr;
    // The ids these tests use, issued as the pool would (the limit persisted first).
    if ((*store)->id_limit() < kIdsIssued) (*store)->PersistIdLimit(kIdsIssued);
    return *std::move(store);
  }

  static NewSequence Seq(SequenceId id, uint64_t tokens, uint32_t layers = 3) {
    NewSequence seq;
    seq.id = id;
    seq.layers = layers;
    seq.entry_bytes = 656;
    seq.entry_stride = 656;
    seq.page_tokens = 64;
    seq.tokens = tokens;
    seq.tenant = "t";
    seq.owner = "client-a";
    seq.now_unix_ns = 5;
    return seq;
  }

  // The slot's record copy that is current, as stored in the region file.
  void CorruptRecordCopy(const RegionStore& store, SlotIndex slot, int copy) {
    auto mapping = MappedRegion::Attach(RegionKind::kShm, spec_.path, spec_.size_bytes);
    ASSERT_TRUE(mapping.ok());
    region_format::RegionHeader header;
    std::memcpy(&header, mapping->base(), sizeof(header));
    auto* record = reinterpret_cast<SequenceRecord*>(mapping->base() + header.record_table_offset) +
                   slot * 2 + copy;
    record->tokens ^= 0x1;
  }

  RegionSpec spec_;
};

TEST_F(RegionStoreTest, SequencesGetDisjointPagesInsideTheHeap) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->formatted_now());
  std::set<uint64_t> pages;
  for (SequenceId id = 1; id <= 4; ++id) {
    auto slot = store->Create(Seq(id, 100 * id));
    ASSERT_TRUE(slot.ok()) << slot.status();
    const SequenceLayout layout = store->Layout(*slot);
    ASSERT_TRUE(ValidateLayout(layout).ok());
    EXPECT_EQ(layout.pages_per_layer, (100 * id + 63) / 64);
    for (uint64_t offset : layout.page_offsets) EXPECT_TRUE(pages.insert(offset).second);
  }
}

// A tenant's workers can write their whole region, page tables included. The daemon
// reads its own copy of every table at run time: forged offsets change no layout it
// serves, and freeing the sequence frees exactly its pages (before, the offsets were
// read from the region, and a forged one cleared bits outside the heap's bitmap).
TEST_F(RegionStoreTest, ForgedPageTablesInTheRegionChangeNothingTheDaemonDoes) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const uint64_t initially_free = store->free_bytes();
  auto slot = store->Create(Seq(1, 1000));
  ASSERT_TRUE(slot.ok());
  ASSERT_TRUE(store->Extend(*slot, 5000, 6).ok());  // the table moves once
  const SequenceLayout before = store->Layout(*slot);
  {
    auto mapping = MappedRegion::Attach(RegionKind::kShm, spec_.path, spec_.size_bytes);
    ASSERT_TRUE(mapping.ok());
    region_format::RegionHeader header;
    std::memcpy(&header, mapping->base(), sizeof(header));
    for (int copy = 0; copy < 2; ++copy) {
      SequenceRecord record;
      std::memcpy(&record, mapping->base() + header.record_table_offset + (*slot * 2 + copy) * sizeof(SequenceRecord),
                  sizeof(record));
      if (record.page_table_offset == 0) continue;
      auto* table = reinterpret_cast<uint64_t*>(mapping->base() + record.page_table_offset);
      for (uint32_t i = 0; i < record.layers * record.page_table_capacity; ++i) table[i] = ~uint64_t{0} - i;
    }
  }
  const SequenceLayout after = store->Layout(*slot);
  EXPECT_EQ(after.page_offsets, before.page_offsets) << "layouts come from the daemon's table";
  ASSERT_TRUE(store->Extend(*slot, 9000, 7).ok()) << "growth copies the daemon's table, not the region's";
  const SequenceLayout grown = store->Layout(*slot);
  EXPECT_TRUE(std::equal(before.page_offsets.begin(), before.page_offsets.begin() + before.pages_per_layer,
                         grown.page_offsets.begin()));
  store->Free(*slot);
  EXPECT_EQ(store->free_bytes(), initially_free) << "its own pages came back, no others";
  // Everything it held is free again: a sequence of the whole heap fits.
  auto again = store->Create(Seq(2, 9000));
  ASSERT_TRUE(again.ok()) << again.status();
}

TEST_F(RegionStoreTest, ReopeningRecoversEverySequenceExactly) {
  std::vector<SequenceLayout> before;
  uint64_t free_before = 0;
  {
    auto store = Open();
    for (SequenceId id = 1; id <= 5; ++id) {
      auto slot = store->Create(Seq(id, 37 * id));
      ASSERT_TRUE(slot.ok());
      // Grow past the initial page-table capacity so the table moves.
      ASSERT_TRUE(store->Extend(*slot, 64 * 20 + id, 6).ok());
      if (id == 3) store->SetState(*slot, RecordState::kReleased, 7);
    }
    auto doomed = store->Create(Seq(9, 500));
    store->Free(*doomed);
    for (SlotIndex slot : store->OccupiedSlots()) before.push_back(store->Layout(slot));
    free_before = store->free_bytes();
  }
  RecoveryReport report;
  auto store = Open(&report);
  EXPECT_FALSE(store->formatted_now());
  EXPECT_EQ(report.sequences, 5u);
  EXPECT_EQ(report.dropped_records, 0u);
  EXPECT_EQ(store->free_bytes(), free_before);
  const auto slots = store->OccupiedSlots();
  ASSERT_EQ(slots.size(), before.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    const SequenceLayout after = store->Layout(slots[i]);
    EXPECT_EQ(after.sequence_id, before[i].sequence_id);
    EXPECT_EQ(after.tokens, before[i].tokens);
    EXPECT_EQ(after.page_offsets, before[i].page_offsets);
    EXPECT_EQ(after.region.uuid, before[i].region.uuid);
  }
  EXPECT_EQ(store->record(slots[2]).state, RecordState::kReleased);
}

TEST_F(RegionStoreTest, ATornRecordFallsBackToItsPreviousCopy) {
  SlotIndex slot;
  {
    auto store = Open();
    slot = *store->Create(Seq(1, 10));  // committed into copy 1
    ASSERT_TRUE(store->Extend(slot, 20, 6).ok());  // copy 0, same page
  }
  {
    auto store = Open();
    EXPECT_EQ(store->record(slot).tokens, 20u);
    CorruptRecordCopy(*store, slot, 0);
  }
  RecoveryReport report;
  auto store = Open(&report);
  EXPECT_EQ(report.sequences, 1u);
  EXPECT_EQ(store->record(slot).tokens, 10u);  // the older copy
}

TEST_F(RegionStoreTest, ARecordWithNoIntactCopyIsDroppedAndReported) {
  SlotIndex slot;
  {
    auto store = Open();
    slot = *store->Create(Seq(1, 10));
    ASSERT_TRUE(store->Extend(slot, 20, 6).ok());
    ASSERT_TRUE(store->Create(Seq(2, 10)).ok());
    CorruptRecordCopy(*store, slot, 0);
    CorruptRecordCopy(*store, slot, 1);
  }
  RecoveryReport report;
  auto store = Open(&report);
  EXPECT_EQ(report.sequences, 1u);
  EXPECT_EQ(report.dropped_records, 1u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_THAT(report.problems[0], HasSubstr("no intact copy"));
  // The slot is usable again and a new record there wins over the broken copies.
  for (SequenceId id = 10; id < 20; ++id) ASSERT_TRUE(store->Create(Seq(id, 1)).ok());
  store.reset();
  RecoveryReport again;
  store = Open(&again);
  EXPECT_EQ(again.sequences, 11u);
}

TEST_F(RegionStoreTest, FailedAllocationLeavesNothingBehind) {
  auto store = Open();
  const uint64_t free_before = store->free_bytes();
  auto slot = store->Create(Seq(1, 1 << 20, 61));
  EXPECT_TRUE(absl::IsResourceExhausted(slot.status())) << slot.status();
  EXPECT_EQ(store->free_bytes(), free_before);
  auto small = store->Create(Seq(2, 64));
  ASSERT_TRUE(small.ok());
  const uint64_t free_small = store->free_bytes();
  EXPECT_TRUE(absl::IsResourceExhausted(store->Extend(*small, 1 << 20, 9)));
  EXPECT_EQ(store->free_bytes(), free_small);
  EXPECT_EQ(store->record(*small).tokens, 64u);
}

TEST_F(RegionStoreTest, RunsOutOfRecordSlotsWithAClearError) {
  auto store = Open();
  for (SequenceId id = 1; id <= 16; ++id) ASSERT_TRUE(store->Create(Seq(id, 0)).ok());
  auto full = store->Create(Seq(17, 0));
  EXPECT_TRUE(absl::IsResourceExhausted(full.status()));
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("no free sequence record"));
}

TEST_F(RegionStoreTest, NewPagesAreZeroedAfterReuse) {
  auto store = Open();
  auto first = store->Create(Seq(1, 640));
  auto mapping = MappedRegion::Attach(RegionKind::kShm, spec_.path, spec_.size_bytes);
  const SequenceLayout layout = store->Layout(*first);
  for (uint64_t offset : layout.page_offsets) std::memset(mapping->base() + offset, 0x77, layout.PageBytes());
  store->Free(*first);
  auto second = store->Create(Seq(2, 640));
  for (uint64_t offset : store->Layout(*second).page_offsets) {
    for (uint64_t b = 0; b < layout.PageBytes(); ++b) ASSERT_EQ(mapping->base()[offset + b], std::byte{0});
  }
}

TEST_F(RegionStoreTest, ACreateInStepsZeroesOnlyReusedPagesAndLeavesNothingIfNeverCommitted) {
  auto store = Open();
  // Most of the 32 MiB heap, so that the second sequence must take the first's pages.
  auto first = store->Create(Seq(1, 14000));
  ASSERT_TRUE(first.ok()) << first.status();
  auto mapping = MappedRegion::Attach(RegionKind::kShm, spec_.path, spec_.size_bytes);
  const SequenceLayout old = store->Layout(*first);
  for (uint64_t offset : old.page_offsets) std::memset(mapping->base() + offset, 0x77, old.PageBytes());
  store->Free(*first);
  const uint64_t free_before = store->free_bytes();

  auto pending = store->PrepareCreate(Seq(2, 14000));
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_FALSE(pending->reused.offsets.empty()) << "the freed pages come back, dirty";
  EXPECT_LT(store->free_bytes(), free_before) << "reserved while pending";
  // Not zeroed yet (the first sequence's old page table granules hold other bytes).
  size_t still_dirty = 0;
  for (uint64_t offset : pending->reused.offsets) still_dirty += mapping->base()[offset] == std::byte{0x77};
  EXPECT_GT(still_dirty, pending->reused.offsets.size() / 2);
  // A daemon that dies here never committed: a restart finds the memory free.
  auto reopened = Open();
  EXPECT_EQ(reopened->free_bytes(), free_before);
  EXPECT_TRUE(reopened->OccupiedSlots().empty());
  reopened.reset();

  store->ZeroReusedPages(pending->reused);
  const SlotIndex slot = store->CommitCreate(*pending);
  const SequenceLayout layout = store->Layout(slot);
  EXPECT_EQ(layout.sequence_id, 2u);
  const std::vector<std::byte> zero(layout.PageBytes(), std::byte{0});
  for (uint64_t offset : layout.page_offsets) {
    ASSERT_EQ(std::memcmp(mapping->base() + offset, zero.data(), zero.size()), 0) << "page at " << offset;
  }
}

TEST_F(RegionStoreTest, AGrowthWhoseSequenceWasReleasedMeanwhileIsUndone) {
  auto store = Open();
  auto slot = store->Create(Seq(1, 100));
  ASSERT_TRUE(slot.ok());
  const uint64_t free_before = store->free_bytes();
  auto pending = store->PrepareExtend(*slot, 5000, 6);  // a larger page table too
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_LT(store->free_bytes(), free_before);
  store->SetState(*slot, RecordState::kReleased, 7);  // another request, outside the zeroing
  const absl::Status committed = store->CommitExtend(*pending);
  EXPECT_TRUE(absl::IsNotFound(committed)) << committed;
  EXPECT_EQ(store->free_bytes(), free_before) << "what the growth took is back";
  EXPECT_EQ(store->record(*slot).tokens, 100u);
}

TEST_F(RegionStoreTest, AGrowthWhoseSlotWentToAnotherSequenceIsUndone) {
  auto store = Open();
  auto slot = store->Create(Seq(1, 100));
  ASSERT_TRUE(slot.ok());
  auto pending = store->PrepareExtend(*slot, 700, 6);
  ASSERT_TRUE(pending.ok());
  store->Free(*slot);  // released and evicted meanwhile, and the slot taken again
  auto other = store->Create(Seq(2, 64));
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(*other, *slot);
  const uint64_t free_before_commit = store->free_bytes();
  EXPECT_TRUE(absl::IsNotFound(store->CommitExtend(*pending)));
  EXPECT_GT(store->free_bytes(), free_before_commit) << "the growth's pages were freed";
  EXPECT_EQ(store->record(*slot).sequence_id, 2u);
  EXPECT_EQ(store->record(*slot).tokens, 64u) << "the slot's new sequence is untouched";
  // Everything else is free again: a reopen agrees with the live allocator.
  const uint64_t free_now = store->free_bytes();
  store.reset();
  EXPECT_EQ(Open()->free_bytes(), free_now);
}

TEST_F(RegionStoreTest, AnAdoptionDuringAGrowthKeepsBoth) {
  auto store = Open();
  auto slot = store->Create(Seq(1, 100));
  ASSERT_TRUE(slot.ok());
  auto pending = store->PrepareExtend(*slot, 700, 6);
  ASSERT_TRUE(pending.ok());
  store->SetOwner(*slot, "decode-worker");
  ASSERT_TRUE(store->CommitExtend(*pending).ok());
  EXPECT_EQ(store->record(*slot).tokens, 700u);
  EXPECT_EQ(region_format::GetName(store->record(*slot).owner), "decode-worker");
}

}  // namespace

// Sequence ids are never reissued: the limit survives reopening, and a torn update of
// it falls back to the previous limit, below which every issued id still lies.
TEST_F(RegionStoreTest, TheIdLimitSurvivesReopeningAndATornUpdate) {
  {
    auto store = Open();
    EXPECT_EQ(store->id_limit(), kIdsIssued);
    store->PersistIdLimit(5000);
  }
  EXPECT_EQ(Open()->id_limit(), 5000u);
  {
    auto store = Open();
    store->PersistIdLimit(6024);
  }
  {
    // Tear the copy written last: the one with the higher generation.
    auto mapping = MappedRegion::Attach(RegionKind::kShm, spec_.path, spec_.size_bytes);
    ASSERT_TRUE(mapping.ok());
    region_format::IdCounter* copies[] = {region_format::IdCounterCopy(mapping->base(), 0),
                                          region_format::IdCounterCopy(mapping->base(), 1)};
    region_format::IdCounter* last = copies[0]->generation > copies[1]->generation ? copies[0] : copies[1];
    ASSERT_EQ(last->id_limit, 6024u);
    last->id_limit ^= 0x100;
  }
  EXPECT_EQ(Open()->id_limit(), 5000u);
}

// A checksum-valid record whose id the region never issued (0, or at or above its
// limit: forged, or written by something other than a daemon) is dropped, saying which.
TEST_F(RegionStoreTest, RecordsWithIdsNeverIssuedAreDroppedSayingWhich) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Create(Seq(7, 10)).ok());
    // The pool refuses to commit an id the region has not issued.
    auto unissued = store->Create(Seq(kIdsIssued, 10));
    EXPECT_THAT(std::string(unissued.status().message()), HasSubstr("was not issued"));
    EXPECT_FALSE(store->Create(Seq(0, 10)).ok());
    ASSERT_TRUE(store->Create(Seq(8, 10)).ok());
  }
  {
    // Forge two records: slot 1 (id 8) gets an id near 2^64, a free slot id 0.
    auto mapping = MappedRegion::Attach(RegionKind::kShm, spec_.path, spec_.size_bytes);
    ASSERT_TRUE(mapping.ok());
    region_format::RegionHeader header;
    std::memcpy(&header, mapping->base(), sizeof(header));
    auto* records = reinterpret_cast<SequenceRecord*>(mapping->base() + header.record_table_offset);
    for (int copy = 0; copy < 2; ++copy) {
      SequenceRecord& r = records[1 * 2 + copy];
      if (!region_format::RecordIsIntact(r)) continue;
      r.sequence_id = ~uint64_t{0} - 3;
      region_format::SealRecord(r);
    }
    SequenceRecord zero = records[region_format::CurrentCopy(&records[0])];  // slot 0's, id 7
    zero.sequence_id = 0;
    zero.generation = 1;
    region_format::SealRecord(zero);
    records[5 * 2] = zero;
  }
  RecoveryReport report;
  auto store = Open(&report);
  EXPECT_EQ(report.sequences, 1u);
  EXPECT_EQ(report.dropped_records, 2u);
  EXPECT_THAT(report.problems, ::testing::Contains(HasSubstr("sequence id 18446744073709551612 was never issued")));
  EXPECT_THAT(report.problems, ::testing::Contains(HasSubstr("sequence id 0 was never issued")));
  ASSERT_EQ(store->OccupiedSlots().size(), 1u);
  EXPECT_EQ(store->record(store->OccupiedSlots()[0]).sequence_id, 7u);
}

// A region formatted before ids were counted (format version 1) is upgraded when
// opened: ids resume far above those it holds, since it cannot know which ids of
// sequences evicted before were issued, and the header then says version 2.
TEST_F(RegionStoreTest, AVersionOneRegionIsUpgradedAndResumesFarAboveItsIds) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Create(Seq(40, 10)).ok());
  }
  {
    // What a version-1 daemon left: no counter, version 1.
    auto mapping = MappedRegion::Attach(RegionKind::kShm, spec_.path, spec_.size_bytes);
    ASSERT_TRUE(mapping.ok());
    std::memset(mapping->base() + region_format::kIdCounterOffset, 0, 2 * region_format::kIdCounterStride);
    region_format::RegionHeader header;
    std::memcpy(&header, mapping->base(), sizeof(header));
    header.version = 1;
    header.checksum = region_format::HeaderChecksum(header);
    std::memcpy(mapping->base(), &header, sizeof(header));
  }
  RecoveryReport report;
  auto store = Open(&report);
  EXPECT_EQ(report.sequences, 1u);
  EXPECT_EQ(store->id_limit(), 41 + kUnknownIdsSkip);
  EXPECT_THAT(report.problems, ::testing::Contains(HasSubstr("format version 1")));
  store.reset();
  RecoveryReport again;
  store = Open(&again);
  EXPECT_EQ(store->id_limit(), 41 + kUnknownIdsSkip);
  EXPECT_TRUE(again.problems.empty());
  region_format::RegionHeader header;
  std::memcpy(&header, store->base(), sizeof(header));
  EXPECT_EQ(header.version, region_format::kVersion);
}

}  // namespace sparsepool
