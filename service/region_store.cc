#include "service/region_store.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/crc32c.h"

namespace sparsepool {

using region_format::RecordState;
using region_format::RegionHeader;
using region_format::SequenceRecord;

namespace {

constexpr uint32_t kMinPageTableCapacity = 8;

std::array<uint8_t, 16> RandomUuid() {
  std::random_device device;
  std::array<uint8_t, 16> uuid;
  for (auto& byte : uuid) byte = static_cast<uint8_t>(device());
  uuid[6] = (uuid[6] & 0x0F) | 0x40;  // version 4
  uuid[8] = (uuid[8] & 0x3F) | 0x80;  // variant 1
  return uuid;
}

uint64_t PagesFor(uint64_t tokens, uint32_t page_tokens) {
  return (tokens + page_tokens - 1) / page_tokens;
}

}  // namespace

RegionStore::RegionStore(uint32_t index, MappedRegion mapping) : mapping_(std::move(mapping)) {
  ref_.index = index;
  ref_.kind = RegionKindName(mapping_.kind());
  ref_.path = mapping_.path();
  ref_.size_bytes = mapping_.size();
}

absl::StatusOr<std::unique_ptr<RegionStore>> RegionStore::Open(uint32_t index,
                                                               MappedRegion mapping,
                                                               uint32_t record_slots,
                                                               uint64_t now_unix_ns,
                                                               RecoveryReport* report) {
  std::unique_ptr<RegionStore> store(new RegionStore(index, std::move(mapping)));
  absl::Status status;
  if (region_format::LooksUnformatted(store->mapping_.base())) {
    status = store->Format(record_slots, now_unix_ns);
  } else {
    status = store->Recover(report);
  }
  if (!status.ok()) return status;
  return store;
}

const RegionHeader& RegionStore::header() const {
  return *reinterpret_cast<const RegionHeader*>(mapping_.base());
}

absl::Status RegionStore::Format(uint32_t record_slots, uint64_t now_unix_ns) {
  auto header = region_format::MakeHeader(mapping_.size(), record_slots, RandomUuid(), now_unix_ns);
  if (!header.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(mapping_.path(), ": ", header.status().message()));
  }
  // Records and the id counter first, header last: a region whose format was
  // interrupted still looks fresh (or fails its checksum) rather than valid with garbage
  // records.
  std::memset(mapping_.base() + sizeof(RegionHeader), 0, header->heap_offset - sizeof(RegionHeader));
  id_counter_generation_ = 0;
  id_counter_copy_ = 1;
  id_limit_ = 0;
  PersistIdLimit(1);
  std::memcpy(mapping_.base(), &*header, sizeof(RegionHeader));
  formatted_now_ = true;
  ref_.uuid = header->uuid;
  heap_ = std::make_unique<GranuleAllocator>(header->heap_granules);
  records_.assign(record_slots, SequenceRecord{});
  pages_.assign(record_slots, {});
  current_copy_.assign(record_slots, 0);
  free_slots_.clear();
  for (SlotIndex slot = record_slots; slot > 0; --slot) free_slots_.push_back(slot - 1);
  return absl::OkStatus();
}

SequenceRecord* RegionStore::RecordCopy(SlotIndex slot, int copy) const {
  return const_cast<SequenceRecord*>(region_format::RecordCopies(mapping_.base(), header(), slot)) + copy;
}

absl::Status RegionStore::Recover(RecoveryReport* report) {
  RegionHeader h;
  std::memcpy(&h, mapping_.base(), sizeof(h));
  absl::Status valid = region_format::ValidateHeader(h, mapping_.size(), mapping_.path());
  if (!valid.ok()) return valid;
  ref_.uuid = h.uuid;
  heap_ = std::make_unique<GranuleAllocator>(h.heap_granules);
  never_used_from_ = h.heap_granules;
  // The id counter, when the region has an intact one: a record whose id it never
  // issued was not written by a daemon, and is dropped.
  std::optional<uint64_t> counted_limit;
  if (h.version >= 2) {
    region_format::IdCounter copies[2];
    std::memcpy(&copies[0], region_format::IdCounterCopy(mapping_.base(), 0), sizeof(copies[0]));
    std::memcpy(&copies[1], region_format::IdCounterCopy(mapping_.base(), 1), sizeof(copies[1]));
    const int current = region_format::CurrentIdCounter(copies);
    if (current >= 0 && copies[current].id_limit >= 1 &&
        copies[current].id_limit <= region_format::kMaxSequenceId) {
      counted_limit = copies[current].id_limit;
      id_limit_ = copies[current].id_limit;
      id_counter_copy_ = current;
      id_counter_generation_ = copies[current].generation;
    } else {
      id_counter_copy_ = copies[0].generation >= copies[1].generation ? 0 : 1;
      id_counter_generation_ = std::max(copies[0].generation, copies[1].generation);
    }
  }
  uint64_t highest_id = 0;
  records_.assign(h.record_slots, SequenceRecord{});
  pages_.assign(h.record_slots, {});
  current_copy_.assign(h.record_slots, 0);
  free_slots_.clear();

  for (SlotIndex slot = 0; slot < h.record_slots; ++slot) {
    SequenceRecord copies[2];
    std::memcpy(&copies[0], RecordCopy(slot, 0), sizeof(SequenceRecord));
    std::memcpy(&copies[1], RecordCopy(slot, 1), sizeof(SequenceRecord));
    const int best = region_format::CurrentCopy(copies);
    if (best < 0) {
      // Both copies unwritten (generation 0) is a slot never used; anything else lost data.
      if (copies[0].generation != 0 || copies[1].generation != 0) {
        ++report->dropped_records;
        report->problems.push_back(absl::StrCat("record slot ", slot, " of ", mapping_.path(),
                                                " has no intact copy; its sequence is lost"));
      }
      // Keep the generations climbing past both copies so a later commit wins.
      records_[slot].generation = std::max(copies[0].generation, copies[1].generation);
      current_copy_[slot] = copies[0].generation >= copies[1].generation ? 0 : 1;
      continue;
    }
    current_copy_[slot] = best;
    records_[slot] = copies[best];
    if (copies[best].state == RecordState::kEmpty) continue;
    const uint64_t id = copies[best].sequence_id;
    absl::Status adopted =
        id == 0 || id >= counted_limit.value_or(region_format::kMaxSequenceId)
            ? absl::DataLossError(absl::StrCat(
                  "sequence id ", id, " was never issued on this region (ids issued: 1 to ",
                  counted_limit.value_or(region_format::kMaxSequenceId) - 1, ")"))
            : AdoptRecord(copies[best]);
    if (!adopted.ok()) {
      ++report->dropped_records;
      report->problems.push_back(absl::StrCat("record slot ", slot, " of ", mapping_.path(),
                                              ": ", adopted.message()));
      records_[slot].state = RecordState::kEmpty;
      continue;
    }
    // From here on the daemon reads its own copy of the table, never the region's.
    const SequenceRecord& r = records_[slot];
    const uint64_t* table = PageTable(r);
    pages_[slot].resize(size_t{r.layers} * r.pages_per_layer);
    for (uint32_t layer = 0; layer < r.layers; ++layer) {
      std::copy(table + size_t{layer} * r.page_table_capacity,
                table + size_t{layer} * r.page_table_capacity + r.pages_per_layer,
                pages_[slot].begin() + size_t{layer} * r.pages_per_layer);
    }
    ++report->sequences;
    highest_id = std::max(highest_id, id);
  }
  for (SlotIndex slot = h.record_slots; slot > 0; --slot) {
    if (records_[slot - 1].state == RecordState::kEmpty) free_slots_.push_back(slot - 1);
  }
  if (!counted_limit) RecoverIdLimit(highest_id, report);
  return absl::OkStatus();
}

void RegionStore::RecoverIdLimit(uint64_t highest_recovered_id, RecoveryReport* report) {
  RegionHeader h;
  std::memcpy(&h, mapping_.base(), sizeof(h));
  const uint64_t limit = highest_recovered_id + 1 + kUnknownIdsSkip;
  report->problems.push_back(absl::StrCat(
      mapping_.path(), h.version < 2 ? " was formatted by format version 1, which kept no sequence-id counter"
                                     : " has no intact sequence-id counter",
      ": ids resume at ", limit, ", ", kUnknownIdsSkip, " above the highest id it holds (", highest_recovered_id,
      "), so that no id of a sequence evicted before is issued again"));
  id_limit_ = 0;
  PersistIdLimit(limit);
  if (h.version < 2) {
    // The counter is written; now the header may say it exists.
    h.version = region_format::kVersion;
    h.checksum = region_format::HeaderChecksum(h);
    std::memcpy(mapping_.base(), &h, sizeof(h));
  }
}

void RegionStore::PersistIdLimit(uint64_t limit) {
  region_format::IdCounter counter;
  std::memset(&counter, 0, sizeof(counter));
  counter.magic = region_format::kIdCounterMagic;
  counter.generation = ++id_counter_generation_;
  counter.id_limit = limit;
  region_format::SealIdCounter(counter);
  const int target = 1 - id_counter_copy_;
  std::memcpy(region_format::IdCounterCopy(mapping_.base(), target), &counter, sizeof(counter));
  id_counter_copy_ = target;
  id_limit_ = limit;
}

absl::Status RegionStore::AdoptRecord(const SequenceRecord& r) {
  const std::string who = absl::StrCat("sequence ", r.sequence_id);
  if (r.state != RecordState::kLive && r.state != RecordState::kReleased &&
      r.state != RecordState::kExpired) {
    return absl::DataLossError(absl::StrCat(who, " has unknown state ", static_cast<uint32_t>(r.state)));
  }
  if (r.layers == 0 || r.page_tokens == 0 || r.entry_bytes == 0 || r.entry_stride < r.entry_bytes ||
      r.pages_per_layer > r.page_table_capacity ||
      PagesFor(r.tokens, r.page_tokens) > r.pages_per_layer) {
    return absl::DataLossError(absl::StrCat(who, " has an inconsistent shape"));
  }
  if (r.stripe_count <= 1 && r.stripe_index != 0) {
    return absl::DataLossError(absl::StrCat(who, " is unstriped but names stripe ", r.stripe_index));
  }
  if (r.stripe_count > 1 && (r.stripe_index >= r.stripe_count || r.sequence_layers < r.stripe_count ||
                             r.layers != region_format::StripeLayers(r.sequence_layers, r.stripe_count,
                                                                     r.stripe_index))) {
    return absl::DataLossError(absl::StrCat(who, " has an inconsistent stripe (", r.stripe_index, " of ",
                                            r.stripe_count, ", ", r.layers, " of ", r.sequence_layers,
                                            " layers)"));
  }
  const RegionHeader& h = header();
  const uint64_t table_bytes = TableBytes(r);
  if (r.page_table_offset < h.heap_offset || (r.page_table_offset - h.heap_offset) % h.granule_bytes != 0 ||
      r.page_table_offset > h.region_bytes || table_bytes > h.region_bytes - r.page_table_offset) {
    return absl::DataLossError(absl::StrCat(who, " has its page table outside the heap"));
  }
  if (PageTableChecksum(r) != r.page_table_checksum) {
    return absl::DataLossError(absl::StrCat(who, " has a corrupted page table"));
  }
  // Claim every run; undo on any conflict so a bad record leaves the bitmap untouched.
  std::vector<std::pair<uint64_t, uint64_t>> claimed;
  auto claim = [&](uint64_t offset, uint64_t granules) {
    if (offset < h.heap_offset || (offset - h.heap_offset) % h.granule_bytes != 0) return false;
    if (!heap_->Reserve(OffsetGranule(offset), granules)) return false;
    claimed.emplace_back(OffsetGranule(offset), granules);
    return true;
  };
  bool ok = claim(r.page_table_offset, GranulesFor(table_bytes));
  const uint64_t* table = PageTable(r);
  for (uint32_t layer = 0; ok && layer < r.layers; ++layer) {
    for (uint32_t page = 0; ok && page < r.pages_per_layer; ++page) {
      ok = claim(table[size_t{layer} * r.page_table_capacity + page], PageGranules(r));
    }
  }
  if (!ok) {
    for (const auto& [first, count] : claimed) heap_->Free(first, count);
    return absl::DataLossError(
        absl::StrCat(who, " claims memory outside the heap or held by another sequence"));
  }
  return absl::OkStatus();
}

uint64_t* RegionStore::PageTable(const SequenceRecord& record) const {
  return reinterpret_cast<uint64_t*>(mapping_.base() + record.page_table_offset);
}

uint32_t RegionStore::PageTableChecksum(const SequenceRecord& r) const {
  const uint64_t* table = PageTable(r);
  uint32_t crc = 0;
  for (uint32_t layer = 0; layer < r.layers; ++layer) {
    crc = Crc32c(table + size_t{layer} * r.page_table_capacity, r.pages_per_layer * sizeof(uint64_t), crc);
  }
  return crc;
}

void RegionStore::Commit(SlotIndex slot, SequenceRecord record) {
  record.generation = records_[slot].generation + 1;
  region_format::SealRecord(record);
  const int target = 1 - current_copy_[slot];
  std::memcpy(RecordCopy(slot, target), &record, sizeof(record));
  current_copy_[slot] = target;
  records_[slot] = record;
}

uint64_t RegionStore::GranuleOffset(uint64_t granule) const {
  return header().heap_offset + granule * region_format::kGranuleBytes;
}

uint64_t RegionStore::OffsetGranule(uint64_t offset) const {
  return (offset - header().heap_offset) / region_format::kGranuleBytes;
}

uint64_t RegionStore::GranulesFor(uint64_t bytes) {
  return (bytes + region_format::kGranuleBytes - 1) / region_format::kGranuleBytes;
}

uint64_t RegionStore::PageGranules(const SequenceRecord& r) const {
  return GranulesFor(uint64_t{r.page_tokens} * r.entry_stride);
}

uint64_t RegionStore::DataBytes(uint32_t layers, uint32_t page_tokens, uint32_t entry_stride,
                                uint64_t pages) {
  return uint64_t{layers} * pages * GranulesFor(uint64_t{page_tokens} * entry_stride) *
         region_format::kGranuleBytes;
}

std::optional<uint64_t> RegionStore::AllocateBytes(uint64_t bytes, bool* still_zero) {
  const uint64_t count = GranulesFor(bytes);
  auto granule = heap_->Allocate(count);
  if (!granule) return std::nullopt;
  if (still_zero != nullptr) *still_zero = *granule >= never_used_from_;
  never_used_from_ = std::max(never_used_from_, *granule + count);
  return GranuleOffset(*granule);
}

void RegionStore::FreeBytes(uint64_t offset, uint64_t bytes) {
  heap_->Free(OffsetGranule(offset), GranulesFor(bytes));
}

absl::StatusOr<SlotIndex> RegionStore::Create(const NewSequence& seq) {
  auto pending = PrepareCreate(seq);
  if (!pending.ok()) return pending.status();
  ZeroReusedPages(pending->reused);
  return CommitCreate(*pending);
}

void RegionStore::ZeroReusedPages(const ReusedPages& pages) const {
  for (uint64_t offset : pages.offsets) std::memset(mapping_.base() + offset, 0, pages.page_bytes);
}

void RegionStore::AbandonCreate(const PendingCreate& pending) {
  const uint64_t page_bytes = PageGranules(pending.record) * region_format::kGranuleBytes;
  for (uint64_t offset : pending.pages) FreeBytes(offset, page_bytes);
  FreeBytes(pending.record.page_table_offset, TableBytes(pending.record));
  free_slots_.push_back(pending.slot);
}

void RegionStore::AbandonExtend(const PendingExtend& pending) { Undo(pending); }

SlotIndex RegionStore::CommitCreate(const PendingCreate& pending) {
  Commit(pending.slot, pending.record);
  pages_[pending.slot] = pending.pages;
  return pending.slot;
}

absl::StatusOr<RegionStore::PendingCreate> RegionStore::PrepareCreate(const NewSequence& seq) {
  if (seq.id == 0 || seq.id >= id_limit_) {
    // The limit is persisted before ids below it are issued; a record above it would be
    // dropped as forged at the next start.
    return absl::InternalError(absl::StrCat("sequence id ", seq.id, " was not issued on region ", ref_.path,
                                            " (its limit is ", id_limit_, ")"));
  }
  if (free_slots_.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "region ", ref_.path, " has no free sequence record (all ", records_.size(), " in use)"));
  }
  SequenceRecord r;
  std::memset(&r, 0, sizeof(r));
  r.sequence_id = seq.id;
  r.state = RecordState::kLive;
  r.layers = seq.layers;
  r.entry_bytes = seq.entry_bytes;
  r.entry_stride = seq.entry_stride;
  r.page_tokens = seq.page_tokens;
  r.page_table_capacity = static_cast<uint32_t>(
      std::max<uint64_t>(kMinPageTableCapacity, PagesFor(seq.tokens, seq.page_tokens)));
  auto table = AllocateBytes(TableBytes(r));
  if (!table) {
    return absl::ResourceExhaustedError(
        absl::StrCat("region ", ref_.path, " has no room for a page table"));
  }
  r.page_table_offset = *table;
  r.created_unix_ns = seq.now_unix_ns;
  if (seq.stripe_count > 1) {
    r.stripe_index = static_cast<uint16_t>(seq.stripe_index);
    r.stripe_count = static_cast<uint16_t>(seq.stripe_count);
    r.sequence_layers = seq.sequence_layers;
  }
  region_format::SetName(seq.tenant, r.tenant);
  region_format::SetName(seq.owner, r.owner);
  auto grown = Grow(r, {}, seq.tokens, seq.now_unix_ns);
  if (!grown.ok()) {
    FreeBytes(r.page_table_offset, TableBytes(r));
    return grown.status();
  }
  PendingCreate pending;
  pending.slot = free_slots_.back();
  free_slots_.pop_back();
  pending.record = grown->grown;
  pending.pages = std::move(grown->pages);
  pending.reused = std::move(grown->reused);
  return pending;
}

absl::StatusOr<RegionStore::PendingExtend> RegionStore::Grow(SequenceRecord r, const std::vector<uint64_t>& old_pages,
                                                             uint64_t tokens, uint64_t now_unix_ns) {
  PendingExtend growth;
  growth.base = r;
  const uint64_t pages = PagesFor(tokens, r.page_tokens);
  r.tokens = tokens;
  r.state_changed_unix_ns = now_unix_ns;
  if (pages <= r.pages_per_layer) {
    growth.grown = r;
    growth.pages = old_pages;
    return growth;
  }
  SequenceRecord grown = r;
  if (pages > r.page_table_capacity) {
    grown.page_table_capacity =
        static_cast<uint32_t>(std::max<uint64_t>(pages, uint64_t{r.page_table_capacity} * 2));
    auto table = AllocateBytes(TableBytes(grown));
    if (!table) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "region ", ref_.path, " has no room to grow the page table of sequence ", r.sequence_id));
    }
    grown.page_table_offset = *table;
    growth.new_table_offset = *table;
  }
  // Allocate every new data page first; undo all of them if one does not fit. Nothing
  // sized by the request is allocated before it is known to fit the free granules.
  const uint64_t page_bytes = PageGranules(r) * region_format::kGranuleBytes;
  const uint64_t new_pages = pages - r.pages_per_layer;
  if (new_pages > heap_->free_granules() / PageGranules(r) / r.layers) {
    if (grown.page_table_offset != r.page_table_offset) FreeBytes(grown.page_table_offset, TableBytes(grown));
    return absl::ResourceExhaustedError(absl::StrCat("region ", ref_.path, " has no room for ", r.layers, " x ",
                                                     new_pages, " pages of ", page_bytes, " bytes"));
  }
  std::vector<uint64_t>& fresh = growth.new_pages;  // freed again if the growth is undone
  std::vector<uint64_t> dirty;
  fresh.reserve(r.layers * new_pages);
  for (uint64_t i = 0; i < r.layers * new_pages; ++i) {
    bool still_zero = false;
    auto page = AllocateBytes(page_bytes, &still_zero);
    if (!page) {
      for (uint64_t offset : fresh) FreeBytes(offset, page_bytes);
      if (grown.page_table_offset != r.page_table_offset) {
        FreeBytes(grown.page_table_offset, TableBytes(grown));
      }
      return absl::ResourceExhaustedError(absl::StrCat("region ", ref_.path, " has no room for ",
                                                       r.layers * new_pages, " pages of ",
                                                       page_bytes, " bytes"));
    }
    fresh.push_back(*page);
    if (!still_zero) dirty.push_back(*page);
  }
  // Pages may hold an evicted sequence's bytes: the caller zeroes them before the
  // commit, so nobody reads another tenant's data.
  growth.reused.offsets = std::move(dirty);
  growth.reused.page_bytes = page_bytes;

  // Entries past the committed pages_per_layer are not covered by the committed
  // record's checksum, so writing them in place is safe before the commit.
  // The daemon's own table first (old rows from its copy, never from the region), then
  // the region's, written from it whole.
  growth.pages.resize(size_t{r.layers} * pages);
  size_t next = 0;
  for (uint32_t layer = 0; layer < r.layers; ++layer) {
    uint64_t* row = growth.pages.data() + size_t{layer} * pages;
    std::copy(old_pages.begin() + size_t{layer} * r.pages_per_layer,
              old_pages.begin() + size_t{layer + 1} * r.pages_per_layer, row);
    for (uint64_t p = r.pages_per_layer; p < pages; ++p) row[p] = fresh[next++];
  }
  uint64_t* table = PageTable(grown);
  for (uint32_t layer = 0; layer < r.layers; ++layer) {
    std::memcpy(table + size_t{layer} * grown.page_table_capacity, growth.pages.data() + size_t{layer} * pages,
                pages * sizeof(uint64_t));
  }
  grown.pages_per_layer = static_cast<uint32_t>(pages);
  grown.page_table_checksum = PageTableChecksum(grown);
  if (grown.page_table_offset != r.page_table_offset) {
    growth.replaced_table_offset = r.page_table_offset;
    growth.replaced_table_bytes = TableBytes(r);
  }
  growth.grown = grown;
  return growth;
}

void RegionStore::Undo(const PendingExtend& pending) {
  for (uint64_t offset : pending.new_pages) FreeBytes(offset, pending.reused.page_bytes);
  if (pending.new_table_offset != 0) FreeBytes(pending.new_table_offset, TableBytes(pending.grown));
}

absl::Status RegionStore::Extend(SlotIndex slot, uint64_t tokens, uint64_t now_unix_ns) {
  auto pending = PrepareExtend(slot, tokens, now_unix_ns);
  if (!pending.ok()) return pending.status();
  ZeroReusedPages(pending->reused);
  return CommitExtend(*pending);
}

absl::StatusOr<RegionStore::PendingExtend> RegionStore::PrepareExtend(SlotIndex slot, uint64_t tokens,
                                                                      uint64_t now_unix_ns) {
  auto pending = Grow(records_[slot], pages_[slot], tokens, now_unix_ns);
  if (!pending.ok()) return pending.status();
  pending->slot = slot;
  return pending;
}

absl::Status RegionStore::CommitExtend(const PendingExtend& pending) {
  const SequenceRecord& now = records_[pending.slot];
  if (now.sequence_id != pending.base.sequence_id || now.state != RecordState::kLive) {
    Undo(pending);
    return absl::NotFoundError(absl::StrCat("sequence ", pending.base.sequence_id,
                                            " was released or reclaimed while it grew"));
  }
  if (now.tokens != pending.base.tokens || now.pages_per_layer != pending.base.pages_per_layer ||
      now.page_table_offset != pending.base.page_table_offset) {
    // Two growths of one sequence at once: the caller serialises them; this one lost.
    Undo(pending);
    return absl::AbortedError(absl::StrCat("sequence ", pending.base.sequence_id, " grew meanwhile; ask again"));
  }
  if (pending.grown.tokens == now.tokens) return absl::OkStatus();
  // Only the growth's fields: anything else (the owner, by an adoption) stays as now.
  SequenceRecord merged = now;
  merged.tokens = pending.grown.tokens;
  merged.state_changed_unix_ns = pending.grown.state_changed_unix_ns;
  merged.pages_per_layer = pending.grown.pages_per_layer;
  merged.page_table_offset = pending.grown.page_table_offset;
  merged.page_table_capacity = pending.grown.page_table_capacity;
  merged.page_table_checksum = pending.grown.page_table_checksum;
  Commit(pending.slot, merged);
  pages_[pending.slot] = pending.pages;
  if (pending.replaced_table_bytes > 0) FreeBytes(pending.replaced_table_offset, pending.replaced_table_bytes);
  return absl::OkStatus();
}

void RegionStore::SetState(SlotIndex slot, RecordState state, uint64_t now_unix_ns) {
  SequenceRecord r = records_[slot];
  r.state = state;
  r.state_changed_unix_ns = now_unix_ns;
  Commit(slot, r);
}

void RegionStore::SetOwner(SlotIndex slot, absl::string_view owner) {
  SequenceRecord r = records_[slot];
  region_format::SetName(owner, r.owner);
  Commit(slot, r);
}

void RegionStore::Free(SlotIndex slot) {
  const SequenceRecord r = records_[slot];
  // Empty the record first: a crash after this point leaks nothing, since the
  // bitmap is rebuilt from records.
  SequenceRecord empty;
  std::memset(&empty, 0, sizeof(empty));
  empty.state = RecordState::kEmpty;
  Commit(slot, empty);
  const uint64_t page_bytes = PageGranules(r) * region_format::kGranuleBytes;
  for (uint64_t offset : pages_[slot]) FreeBytes(offset, page_bytes);
  pages_[slot].clear();
  pages_[slot].shrink_to_fit();
  FreeBytes(r.page_table_offset, TableBytes(r));
  free_slots_.push_back(slot);
}

void RegionStore::Erase(SlotIndex slot) {
  const SequenceRecord& r = records_[slot];
  ReusedPages pages;
  pages.offsets = pages_[slot];
  pages.page_bytes = PageGranules(r) * region_format::kGranuleBytes;
  ZeroReusedPages(pages);
  Free(slot);
}

std::vector<SlotIndex> RegionStore::OccupiedSlots() const {
  std::vector<SlotIndex> slots;
  for (SlotIndex slot = 0; slot < records_.size(); ++slot) {
    if (records_[slot].state != RecordState::kEmpty) slots.push_back(slot);
  }
  return slots;
}

SequenceLayout RegionStore::Layout(SlotIndex slot) const {
  const SequenceRecord& r = records_[slot];
  SequenceLayout layout;
  layout.sequence_id = r.sequence_id;
  layout.tenant = region_format::GetName(r.tenant);
  layout.layers = r.layers;
  layout.entry_bytes = r.entry_bytes;
  layout.entry_stride = r.entry_stride;
  layout.page_tokens = r.page_tokens;
  layout.tokens = r.tokens;
  layout.pages_per_layer = r.pages_per_layer;
  layout.region = ref_;
  layout.record_offset = header().record_table_offset + uint64_t{slot} * 2 * sizeof(SequenceRecord);
  layout.page_offsets.resize(size_t{r.layers} * r.pages_per_layer);
  if (layout.page_offsets.empty()) return layout;  // no pages yet: nothing to copy (memcpy takes no null)
  std::copy(pages_[slot].begin(), pages_[slot].end(), layout.page_offsets.begin());
  return layout;
}

uint64_t RegionStore::SequenceBytes(SlotIndex slot) const {
  const SequenceRecord& r = records_[slot];
  return DataBytes(r.layers, r.page_tokens, r.entry_stride, r.pages_per_layer) +
         GranulesFor(TableBytes(r)) * region_format::kGranuleBytes;
}

uint64_t RegionStore::capacity_bytes() const {
  return heap_->total_granules() * region_format::kGranuleBytes;
}

uint64_t RegionStore::free_bytes() const {
  return heap_->free_granules() * region_format::kGranuleBytes;
}

uint64_t RegionStore::TableBytes(const SequenceRecord& r) {
  return uint64_t{r.layers} * r.page_table_capacity * sizeof(uint64_t);
}

}  // namespace sparsepool
