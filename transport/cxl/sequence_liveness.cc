#include "transport/cxl/sequence_liveness.h"

#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/region_format.h"

namespace sparsepool {

using region_format::RecordState;
using region_format::SequenceRecord;

absl::Status CheckSequenceLive(const std::byte* region_base, SequenceId id, uint32_t record_slot,
                               const std::string& region_path) {
  // The entries were read before this point; the record must be read after them.
  std::atomic_thread_fence(std::memory_order_acquire);
  region_format::RegionHeader header;
  std::memcpy(&header, region_base, sizeof(header));
  if (record_slot >= header.record_slots) {
    return absl::InvalidArgumentError(absl::StrCat("the layout of sequence ", id, " names record slot ", record_slot,
                                                   "; region ", region_path, " has ", header.record_slots));
  }
  // The daemon rewrites one copy at a time, so at least one is intact unless two
  // commits overlapped this read: read again.
  SequenceRecord copies[2];
  int current = -1;
  for (int attempt = 0; attempt < 4 && current < 0; ++attempt) {
    std::memcpy(copies, region_format::RecordCopies(region_base, header, record_slot), sizeof(copies));
    current = region_format::CurrentCopy(copies);
  }
  if (current < 0) {
    return absl::UnavailableError(absl::StrCat("the record of sequence ", id, " in ", region_path,
                                               " could not be read intact; try again"));
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

}  // namespace sparsepool
