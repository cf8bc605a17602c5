#include "transport/sequence_liveness.h"

#include <atomic>
#include <cstring>
#include <vector>

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

absl::Status ReadAndCheckRecords(absl::Span<const SequenceId> ids,
                                 absl::FunctionRef<absl::Status(absl::Span<RecordCopies> copies)> read) {
  std::vector<RecordCopies> copies(ids.size());
  absl::Status torn;
  // The daemon rewrites one copy at a time, so at least one is intact unless two
  // commits overlapped the read: read again.
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (absl::Status s = read(absl::MakeSpan(copies)); !s.ok()) return s;
    torn = absl::OkStatus();
    for (size_t i = 0; i < ids.size(); ++i) {
      absl::Status s = CheckRecordShowsLive(copies[i].data(), ids[i]);
      if (absl::IsUnavailable(s)) {
        torn = s;
      } else if (!s.ok()) {
        return s;
      }
    }
    if (torn.ok()) break;
  }
  return torn;
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
  const SequenceId ids[] = {id};
  return ReadAndCheckRecords(ids, [&](absl::Span<RecordCopies> copies) {
    std::memcpy(copies[0].data(), region_base + offset, kRecordCopiesBytes);
    return absl::OkStatus();
  });
}

}  // namespace sparsepool
