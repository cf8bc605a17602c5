// Is the sequence a client just read still the one its layout described? A layout the
// client cached stays valid only while the sequence is live: once released (by any
// client) or reclaimed, its pages may be evicted and handed to another sequence. The
// daemon writes the release into the sequence's record in the region before any page
// can be reused, so reading the record after reading the pages tells whether what was
// read belonged to the sequence: if the record still shows it live, no reuse happened
// before the read. Clients that map the region read the record directly; RDMA clients
// read its two copies with one more get after the batch.
#ifndef SPARSEPOOL_TRANSPORT_SEQUENCE_LIVENESS_H_
#define SPARSEPOOL_TRANSPORT_SEQUENCE_LIVENESS_H_

#include <array>
#include <cstddef>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/layout.h"
#include "common/region_format.h"

namespace sparsepool {

// The bytes an RDMA client reads: both copies of the record, at the layout's
// record_offset.
inline constexpr size_t kRecordCopiesBytes = 2 * sizeof(region_format::SequenceRecord);

// OK when the current copy shows sequence `id` live. NotFound, naming the sequence and
// what became of it, otherwise; Unavailable when neither copy is intact (a torn read
// of two overlapping commits: read again).
absl::Status CheckRecordShowsLive(const region_format::SequenceRecord copies[2], SequenceId id);

// For readers that fetch records (RDMA gets): `read` fills copies[i] with the record of
// ids[i]; it runs again while a read was torn (at most four times). The first error of
// `read`, or the first sequence no longer live, comes back.
using RecordCopies = std::array<region_format::SequenceRecord, 2>;
absl::Status ReadAndCheckRecords(absl::Span<const SequenceId> ids,
                                 absl::FunctionRef<absl::Status(absl::Span<RecordCopies> copies)> read);

// For a mapped region whose header was validated: reads the record after an acquire
// fence (retrying torn reads) and checks it. InvalidArgument when the layout's record
// offset is not a record slot of the region.
absl::Status CheckSequenceLive(const std::byte* region_base, SequenceId id, uint64_t record_offset,
                               const std::string& region_path);
inline absl::Status CheckSequenceLive(const std::byte* region_base, const SequenceLayout& layout) {
  return CheckSequenceLive(region_base, layout.sequence_id, layout.record_offset, layout.region.path);
}

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_SEQUENCE_LIVENESS_H_
