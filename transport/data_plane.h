// The data plane: how a worker moves entries between its buffers and the pool once it
// knows a sequence's layout. Every transport implements this one interface: load/store
// over CXL or host memory (transport/cxl), RDMA reads and writes (transport/rdma). The
// client picks one at run time and never sees which.
//
// Validation is not the transports' business: Gather and Write check every index,
// layer and size against the layouts first and name the bad value, then hand a batch
// that is known to be in bounds to the transport.
#ifndef SPARSEPOOL_TRANSPORT_DATA_PLANE_H_
#define SPARSEPOOL_TRANSPORT_DATA_PLANE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/layout.h"
#include "common/release_fence.h"

namespace sparsepool {

// One layer's top-k fetch for a batch of sequences.
struct GatherBatch {
  uint32_t layer = 0;
  // One layout per batch row; all of the same entry_bytes.
  absl::Span<const SequenceLayout* const> sequences;
  // [rows][k] token indices, row-major; -1 is padding: nothing is read and the output
  // row is left as it was.
  absl::Span<const int32_t> indices;
  // [rows][k][entry_bytes], packed.
  absl::Span<std::byte> out;
};

// Entries of consecutive tokens [first_token, first_token + count) of one layer.
struct WriteRange {
  const SequenceLayout* sequence = nullptr;
  uint32_t layer = 0;
  uint64_t first_token = 0;
  absl::Span<const std::byte> entries;  // count * entry_bytes, packed
};

class DataPlane {
 public:
  virtual ~DataPlane() = default;

  // Short name for logs and benchmark tables ("cxl", "ucx", "verbs").
  virtual const char* name() const = 0;

  // Copies the selected entries into batch.out. Fails without reading anything when
  // any index, the layer or a size is out of bounds.
  absl::Status Gather(const GatherBatch& batch);

  // Stores entries into the pool. Fails without writing anything when the range is
  // past the sequence's tokens or the size is not whole entries. Long ranges go in
  // pieces of kWriteChunkBytes, each checked by the transport (see transport/sequence_liveness.h)
  // and each holding a ticket of the release fence, when one is set, from before its
  // check until its bytes have landed.
  absl::Status Write(const WriteRange& range);
  static constexpr uint64_t kWriteChunkBytes = 16 << 20;

  // The client's fence (common/release_fence.h); null: writes are not fenced (then
  // only the daemon's reuse grace keeps a racing write out of reused pages). Set it
  // before the first write; it must outlive the data plane.
  void set_release_fence(ReleaseFence* fence) { fence_ = fence; }

 protected:
  // REQUIRES: ValidateGather(batch).ok()
  virtual absl::Status GatherValidated(const GatherBatch& batch) = 0;
  // REQUIRES: ValidateWrite(range).ok(). Returns once the bytes have landed (or will
  // never land).
  virtual absl::Status WriteValidated(const WriteRange& range) = 0;

 private:
  ReleaseFence* fence_ = nullptr;
};

absl::Status ValidateGather(const GatherBatch& batch);
absl::Status ValidateWrite(const WriteRange& range);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_DATA_PLANE_H_
