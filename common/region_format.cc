#include "common/region_format.h"

#include <cstddef>
#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crc32c.h"

namespace sparsepool::region_format {
namespace {

uint64_t RoundUp(uint64_t value, uint64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace

absl::StatusOr<Geometry> ComputeGeometry(uint64_t region_bytes, uint32_t record_slots) {
  if (record_slots == 0) {
    return absl::InvalidArgumentError("record_slots must be at least 1");
  }
  Geometry g;
  g.record_table_offset = kHeaderBytes;
  const uint64_t table_bytes = uint64_t{record_slots} * 2 * sizeof(SequenceRecord);
  g.heap_offset = RoundUp(g.record_table_offset + table_bytes, kGranuleBytes);
  if (region_bytes < g.heap_offset + kGranuleBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "region of ", region_bytes, " bytes is too small: its header and ", record_slots,
        " sequence records need ", g.heap_offset, " bytes before the heap"));
  }
  g.heap_granules = (region_bytes - g.heap_offset) / kGranuleBytes;
  return g;
}

bool LooksUnformatted(const void* region_base) {
  const auto* bytes = static_cast<const uint8_t*>(region_base);
  for (size_t i = 0; i < sizeof(RegionHeader); ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

uint32_t HeaderChecksum(const RegionHeader& header) {
  return Crc32c(&header, offsetof(RegionHeader, checksum));
}

uint32_t RecordChecksum(const SequenceRecord& record) {
  return Crc32c(&record, offsetof(SequenceRecord, checksum));
}

absl::StatusOr<RegionHeader> MakeHeader(uint64_t region_bytes, uint32_t record_slots,
                                        const std::array<uint8_t, 16>& uuid,
                                        uint64_t now_unix_ns) {
  auto geometry = ComputeGeometry(region_bytes, record_slots);
  if (!geometry.ok()) return geometry.status();
  RegionHeader h;
  std::memset(&h, 0, sizeof(h));
  h.magic = kMagic;
  h.version = kVersion;
  h.header_struct_bytes = sizeof(RegionHeader);
  h.region_bytes = region_bytes;
  h.granule_bytes = kGranuleBytes;
  h.record_table_offset = geometry->record_table_offset;
  h.record_slots = record_slots;
  h.record_bytes = sizeof(SequenceRecord);
  h.heap_offset = geometry->heap_offset;
  h.heap_granules = geometry->heap_granules;
  h.uuid = uuid;
  h.formatted_unix_ns = now_unix_ns;
  h.checksum = HeaderChecksum(h);
  return h;
}

absl::Status ValidateHeader(const RegionHeader& h, uint64_t mapped_bytes,
                            const std::string& where) {
  if (h.magic != kMagic) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, " does not hold a sparsepool region: magic is ",
        absl::CHexEscape(absl::string_view(h.magic.data(), h.magic.size())),
        ", expected SPPOOLRG"));
  }
  if (h.version < kOldestReadableVersion || h.version > kVersion) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": region format version ",
                                                      h.version, " is not supported (this build reads ",
                                                      kOldestReadableVersion, " to ", kVersion, ")"));
  }
  const uint32_t computed = HeaderChecksum(h);
  if (computed != h.checksum) {
    return absl::DataLossError(absl::StrFormat(
        "%s: region header is corrupted (checksum stored %08x, computed %08x); refusing to "
        "trust it",
        where, h.checksum, computed));
  }
  if (h.header_struct_bytes != sizeof(RegionHeader) ||
      h.record_bytes != sizeof(SequenceRecord) || h.granule_bytes != kGranuleBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, ": region was formatted with structure sizes this build does not use (header ",
        h.header_struct_bytes, ", record ", h.record_bytes, ", granule ", h.granule_bytes, ")"));
  }
  if (h.region_bytes != mapped_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": header says the region is ",
                                                      h.region_bytes, " bytes but ",
                                                      mapped_bytes, " are mapped"));
  }
  auto geometry = ComputeGeometry(h.region_bytes, h.record_slots);
  if (!geometry.ok() || geometry->record_table_offset != h.record_table_offset ||
      geometry->heap_offset != h.heap_offset || geometry->heap_granules != h.heap_granules) {
    return absl::DataLossError(
        absl::StrCat(where, ": region header geometry is inconsistent (", h.record_slots,
                     " records, heap at ", h.heap_offset, " of ", h.heap_granules, " granules)"));
  }
  return absl::OkStatus();
}

void SealRecord(SequenceRecord& record) { record.checksum = RecordChecksum(record); }

bool RecordIsIntact(const SequenceRecord& record) {
  return record.generation != 0 && record.checksum == RecordChecksum(record);
}

void SetName(absl::string_view name, std::array<char, kNameBytes>& field) {
  field.fill(0);
  std::memcpy(field.data(), name.data(), std::min(name.size(), field.size() - 1));
}

std::string GetName(const std::array<char, kNameBytes>& field) {
  return std::string(field.data(), strnlen(field.data(), field.size()));
}

std::string UuidToString(const std::array<uint8_t, 16>& uuid) {
  std::string out;
  for (size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    absl::StrAppendFormat(&out, "%02x", uuid[i]);
  }
  return out;
}

int CurrentCopy(const SequenceRecord copies[2]) {
  int best = -1;
  for (int c = 0; c < 2; ++c) {
    if (RecordIsIntact(copies[c]) && (best < 0 || copies[c].generation > copies[best].generation)) best = c;
  }
  return best;
}

const SequenceRecord* RecordCopies(const void* region_base, const RegionHeader& header, uint32_t slot) {
  return reinterpret_cast<const SequenceRecord*>(static_cast<const std::byte*>(region_base) +
                                                 header.record_table_offset) +
         size_t{slot} * 2;
}

IdCounter* IdCounterCopy(void* region_base, int copy) {
  return reinterpret_cast<IdCounter*>(static_cast<std::byte*>(region_base) + kIdCounterOffset +
                                      copy * kIdCounterStride);
}

void SealIdCounter(IdCounter& counter) { counter.checksum = Crc32c(&counter, offsetof(IdCounter, checksum)); }

int CurrentIdCounter(const IdCounter copies[2]) {
  int best = -1;
  for (int c = 0; c < 2; ++c) {
    const IdCounter& counter = copies[c];
    const bool intact = counter.magic == kIdCounterMagic && counter.generation != 0 &&
                        counter.checksum == Crc32c(&counter, offsetof(IdCounter, checksum));
    if (intact && (best < 0 || counter.generation > copies[best].generation)) best = c;
  }
  return best;
}

}  // namespace sparsepool::region_format
