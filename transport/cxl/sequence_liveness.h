// Is the sequence a client just read still the one its layout described? A layout the
// client cached stays valid only while the sequence is live: once released (by any
// client) or reclaimed, its pages may be evicted and handed to another sequence. The
// daemon writes the release into the sequence's record in the region before any page
// can be reused, so reading the record after reading the pages (acquire order) tells
// whether what was read belonged to the sequence: if the record still shows it live,
// no reuse happened before the read.
#ifndef SPARSEPOOL_TRANSPORT_CXL_SEQUENCE_LIVENESS_H_
#define SPARSEPOOL_TRANSPORT_CXL_SEQUENCE_LIVENESS_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "common/layout.h"

namespace sparsepool {

// `region_base` is the mapping of a region whose header was validated. NotFound, naming
// the sequence and what became of it, when the record no longer shows it live;
// InvalidArgument when the layout's record slot is outside the region's table.
absl::Status CheckSequenceLive(const std::byte* region_base, SequenceId id, uint32_t record_slot,
                               const std::string& region_path);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_CXL_SEQUENCE_LIVENESS_H_
