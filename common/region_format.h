// The bytes at the start of every region: a header that says what the region is, then
// a table of sequence records, then the page heap. Everything the daemon needs to find
// its sequences again lives here, so a daemon restarted on the same memory (a shm file,
// a hugetlbfs file, a CXL device) serves the same bytes. The in-memory allocation state
// (which granules are free) is derived from the records at start-up, never stored.
//
// Layout of a region of R bytes:
//   [0, 4096)                     RegionHeader (checksummed, written once at format) and,
//                                 at kIdCounterOffset, the two copies of the IdCounter
//   [record_table_offset, ...)    record_slots x 2 copies x SequenceRecord
//   [heap_offset, R)              heap_granules granules of granule_bytes: page tables
//                                 and the sequences' data pages
//
// Each record slot has two copies. An update writes the copy that is not current with
// generation + 1 and a fresh checksum; a crash mid-write leaves the other copy intact.
// Page tables are written before the record that points at them.
#ifndef SPARSEPOOL_COMMON_REGION_FORMAT_H_
#define SPARSEPOOL_COMMON_REGION_FORMAT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparsepool::region_format {

inline constexpr std::array<char, 8> kMagic = {'S', 'P', 'P', 'O', 'O', 'L', 'R', 'G'};
// Version 2 added the IdCounter. A daemon opening a version-1 region upgrades it
// (service/region_store.cc); clients read both.
inline constexpr uint32_t kVersion = 2;
inline constexpr uint32_t kOldestReadableVersion = 1;
inline constexpr uint64_t kHeaderBytes = 4096;
inline constexpr uint64_t kGranuleBytes = 4096;
inline constexpr size_t kNameBytes = 64;  // tenant and owner, NUL-terminated

struct RegionHeader {
  std::array<char, 8> magic;
  uint32_t version;
  uint32_t header_struct_bytes;  // sizeof(RegionHeader) when formatted
  uint64_t region_bytes;
  uint64_t granule_bytes;
  uint64_t record_table_offset;
  uint32_t record_slots;
  uint32_t record_bytes;  // sizeof(SequenceRecord) when formatted
  uint64_t heap_offset;
  uint64_t heap_granules;
  std::array<uint8_t, 16> uuid;
  uint64_t formatted_unix_ns;
  uint32_t checksum;  // CRC-32C of every byte above
  uint32_t reserved;
};
static_assert(sizeof(RegionHeader) == 96);

enum class RecordState : uint32_t {
  kEmpty = 0,
  kLive = 1,
  kReleased = 2,  // released by a client; memory reclaimed when needed
  kExpired = 3,   // its owner's lease ran out; memory reclaimed when needed
};

struct SequenceRecord {
  uint64_t generation;  // 0: this copy was never written
  uint64_t sequence_id;
  RecordState state;
  uint32_t layers;
  uint32_t entry_bytes;
  uint32_t entry_stride;
  uint32_t page_tokens;
  uint32_t pages_per_layer;  // data pages allocated for each layer
  uint64_t tokens;
  uint64_t page_table_offset;    // region offset of uint64[layers][page_table_capacity]
  uint32_t page_table_capacity;  // pages per layer the table has room for
  uint32_t page_table_checksum;  // CRC-32C of the used entries, layer by layer
  uint64_t created_unix_ns;
  uint64_t state_changed_unix_ns;
  std::array<char, kNameBytes> tenant;
  std::array<char, kNameBytes> owner;
  // A striped sequence (its layers round robin over regions) has one record per stripe,
  // each in its own region and holding `layers` of the sequence's `sequence_layers`
  // (layer l of the sequence is local layer l / stripe_count of stripe l %
  // stripe_count). Stripe 0 is the home record: the one whose state clients check.
  // stripe_count 0 (every record written before striping existed) or 1: unstriped.
  uint16_t stripe_index;
  uint16_t stripe_count;
  uint32_t sequence_layers;
  std::array<uint8_t, 36> reserved;
  uint32_t checksum;  // CRC-32C of every byte above
};
static_assert(sizeof(SequenceRecord) == 256);
static_assert(offsetof(SequenceRecord, stripe_index) == 208, "the striping fields took the reserved bytes' place");

// Layers of a sequence of `sequence_layers` that stripe `stripe` of `stripes` holds.
inline uint32_t StripeLayers(uint32_t sequence_layers, uint32_t stripes, uint32_t stripe) {
  return stripe >= sequence_layers ? 0 : (sequence_layers - stripe + stripes - 1) / stripes;
}

// Sequence ids are never reissued on a region, so that a layout a client still holds
// can never describe a newer sequence: every liveness check compares ids
// (transport/sequence_liveness.h). The daemon issues ids from blocks and persists the end
// of the current block here before it hands out any id from it, so after a crash or
// restart it resumes above every id it may have issued. Two copies, each checksummed;
// an update writes the copy that is not current with generation + 1.
inline constexpr std::array<char, 8> kIdCounterMagic = {'S', 'P', 'I', 'D', 'L', 'I', 'M', 'T'};
inline constexpr uint64_t kIdCounterOffset = 1024;  // inside the header's 4 KiB
inline constexpr uint64_t kIdCounterStride = 64;     // copy 1 sits this far after copy 0
// Every issued id is in [1, kMaxSequenceId): far enough below 2^64 that no sum wraps.
inline constexpr uint64_t kMaxSequenceId = uint64_t{1} << 62;

struct IdCounter {
  std::array<char, 8> magic;
  uint64_t generation;  // 0: this copy was never written
  uint64_t id_limit;    // every id ever issued on this region is below this
  uint32_t checksum;    // CRC-32C of every byte above
  uint32_t reserved;
};
static_assert(sizeof(IdCounter) == 32);

// The counter copy `copy` (0 or 1) of a mapped region.
IdCounter* IdCounterCopy(void* region_base, int copy);
void SealIdCounter(IdCounter& counter);
// Which copy is current: the intact one (magic, checksum, generation > 0) with the
// higher generation; -1 when neither is intact.
int CurrentIdCounter(const IdCounter copies[2]);

// Where things go in a region of `region_bytes` with `record_slots` slots.
struct Geometry {
  uint64_t record_table_offset;
  uint64_t heap_offset;
  uint64_t heap_granules;
};
absl::StatusOr<Geometry> ComputeGeometry(uint64_t region_bytes, uint32_t record_slots);

// True when the first bytes of a region are all zero: a fresh backing to format.
bool LooksUnformatted(const void* region_base);

// Fills magic, version, sizes, geometry and checksum. `uuid` identifies the region.
absl::StatusOr<RegionHeader> MakeHeader(uint64_t region_bytes, uint32_t record_slots,
                                        const std::array<uint8_t, 16>& uuid,
                                        uint64_t now_unix_ns);

// Checks a header read from a region of `mapped_bytes`: magic, version, checksum and
// that every part it describes lies inside the mapping. `where` names the region in
// the error message.
absl::Status ValidateHeader(const RegionHeader& header, uint64_t mapped_bytes,
                            const std::string& where);

uint32_t HeaderChecksum(const RegionHeader& header);
uint32_t RecordChecksum(const SequenceRecord& record);

// Sets the record's checksum.
void SealRecord(SequenceRecord& record);
// Written at least once and its checksum matches.
bool RecordIsIntact(const SequenceRecord& record);

// Which of a slot's two copies is current: the intact one with the higher generation;
// -1 when neither is intact.
int CurrentCopy(const SequenceRecord copies[2]);

// A slot's two copies inside a mapped region whose header was validated.
const SequenceRecord* RecordCopies(const void* region_base, const RegionHeader& header, uint32_t slot);

// Fixed-size, NUL-terminated name fields (tenant, owner). SetName truncates to 63 bytes;
// callers validate lengths first.
void SetName(absl::string_view name, std::array<char, kNameBytes>& field);
std::string GetName(const std::array<char, kNameBytes>& field);

std::string UuidToString(const std::array<uint8_t, 16>& uuid);

}  // namespace sparsepool::region_format

#endif  // SPARSEPOOL_COMMON_REGION_FORMAT_H_
