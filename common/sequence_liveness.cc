#include "common/sequence_liveness.h"

#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sparsepool {

using region_format::RecordState;
using region_format::SequenceRecord;

absl::Status CheckRecordShowsLive(const SequenceRecord copies[2], SequenceId id) {
  const int current = region_format::CurrentCopy(copies);
  if (current < 0) {
    return absl::UnavailableError(absl::StrCat("the record of sequence ", id, " was not read intact; try again"));
  }
  const SequenceRecord& record = copies[current];
  if (record.sequence_id == id && record.state == RecordState::kLive) return absl::OkStatus();
  const char* fate = record.sequence_id != id ? "was released and its memory given to another sequence"
                     : record.state == RecordState::kExpired ? "was reclaimed: its owner's lease expired"
                                                             : "was released";
  return absl::NotFoundError(absl::StrCat("sequence ", id, " ", fate,
                                          " while this client still used its layout; what was read "
                                          "may belong to another sequence and is not returned"));
}

absl::Status CheckSequenceLive(const std::byte* region_base, SequenceId id, uint64_t offset,
                               const std::string& region_path) {
  // The entries were read before this point; the record must be read after them.
  std::atomic_thread_fence(std::memory_order_acquire);
  region_format::RegionHeader header;
  std::memcpy(&header, region_base, sizeof(header));
  const uint64_t table_end = header.record_table_offset + uint64_t{header.record_slots} * kRecordCopiesBytes;
  if (offset < header.record_table_offset || offset >= table_end ||
      (offset - header.record_table_offset) % kRecordCopiesBytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat("the layout of sequence ", id, " names record offset ", offset,
                                                   ", not a record slot of ", region_path));
  }
  // The daemon rewrites one copy at a time, so at least one is intact unless two
  // commits overlapped this read: read again.
  absl::Status status;
  for (int attempt = 0; attempt < 4; ++attempt) {
    SequenceRecord copies[2];
    std::memcpy(copies, region_base + offset, sizeof(copies));
    status = CheckRecordShowsLive(copies, id);
    if (!absl::IsUnavailable(status)) break;
  }
  return status;
}

}  // namespace sparsepool
