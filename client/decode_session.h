// A decode worker's batch on the GPU, shaped for how inference engines run decode: the
// whole step (every layer's top-k fetch and the write of every layer's new entry) is
// enqueued on the engine's stream with no host work between layers, so the engine can
// capture it once in a CUDA graph and replay it every step while contexts grow.
//
//   auto session = DecodeSession::Create(client, regions, options);
//   auto row = session->Join(sequence, prompt_tokens, stream);    // between steps
//   // capture once (or run eagerly):
//   session->BeginStep(stream);
//   for (layer ...) {
//     session->WriteLayer(layer, d_new_entry /* [max_batch][entry_bytes] */, stream);
//     session->FetchLayer(layer, d_topk /* int32 [max_batch][k], -1 pad */, stream);
//     attention(session->delivered(layer).entries, session->delivered(layer).flat_indices);
//   }
//   session->EndStep(stream);
//   // every step: session->PrepareStep(stream, &failures); then replay the graph.
//
// Device state: for each row (request) and layer a row table and a page table with room
// for max_tokens, allocated once; joins, leaves and growth only copy table entries
// (PrepareStep, Join, Leave), never allocate or free. Pages are reserved in the pool
// ahead of need (reserve_tokens at a time, ExtendSequence on the session's threads,
// rows side by side), so no RPC sits on the per-token path.
//
// Each step appends one token per active row: BeginStep grows every active row by one
// token, WriteLayer stores that token's entry (the row's last) for a layer, and the
// layer's top-k may then select it. Entries are delivered where an attention kernel
// reads them: rows of entry_bytes addressed by flat int32 indices, -1 for padding, the
// form FlashMLA's sparse decoding takes ([blocks, 64, 1, entry_bytes] plus indices):
// without a cache in a buffer of the batch's selected entries, with the residency
// cache straight in its slot storage (only misses cross the link).
//
// Safety: the step's end checks every active row's record on the device; a row whose
// sequence was released under it is reported by the next PrepareStep (and left), at
// most one step late, without the graph ever waiting on the host. Write-backs check the
// record right before writing, and hold the client's release fence from PrepareStep
// until the step has completed on the GPU (a host node at EndStep ends it), so the
// daemon never reuses pages a step may still write.
//
// Thread-compatible: one thread drives a session; the stream is the engine's.
#ifndef SPARSEPOOL_CLIENT_DECODE_SESSION_H_
#define SPARSEPOOL_CLIENT_DECODE_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/gpu_regions.h"
#include "client/sparsepool_client.h"

// The CUDA runtime's handles, declared as cuda_runtime_api.h declares them, so that this
// header needs no toolkit: a build without one links a stand-in whose Create says so.
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

namespace sparsepool {

namespace internal {
class DecodeSessionImpl;  // client/decode_session_impl.h
}  // namespace internal

// What the residency cache evicts when a step's misses need slots: the least recently
// used entry, or the one whose selections decayed most (ours; docs/gpu.md compares them).
enum class CachePolicy : uint32_t { kLru = 0, kDecayedFrequency = 1 };

// How a fetch without the cache reads the pool: one warp per selected entry in the
// indexer's order; each row's entries sorted by address first; or the whole batch's
// sorted together (pays on scattered pages over a large pool; docs/gpu.md).
enum class GatherOrder { kWarpPerEntry = 0, kSortedByAddress = 1, kBatchSortedByAddress = 2 };

// Hits and misses of the residency cache so far, over every (row, layer).
struct CacheCounters {
  uint64_t hits = 0;
  uint64_t misses = 0;
};

struct DecodeSessionOptions {
  uint32_t max_batch = 0;    // rows at once (at most 1024)
  uint32_t layers = 0;       // of every sequence that joins
  uint32_t entry_bytes = 0;  // of every sequence that joins
  uint32_t k = 0;            // top-k per row and layer (a multiple of 64 fills whole blocks)
  uint64_t max_tokens = 0;   // longest context a row may reach
  uint32_t page_tokens = 64;  // of every sequence that joins
  // Residency cache slots per (row, layer); 0: no cache, every selected entry is copied.
  uint32_t cache_slots = 0;
  CachePolicy policy = CachePolicy::kDecayedFrequency;
  // Without the cache: entry buffers rotated over the layers (layer l uses l % buffers),
  // so that fetching layer l+1 may run while attention still reads layer l.
  uint32_t buffers = 3;
  // Tokens reserved in the pool ahead of a row's need, one ExtendSequence at a time.
  uint64_t reserve_tokens = 1024;
  // Cap on the blocks one gather occupies (0: fill the GPU).
  uint32_t max_blocks = 0;
  // Without the cache: how the gather runs, and for the sorted gather its blocks per row
  // (0: its default).
  // Warp per entry measured fastest at batches 1 and 16 on the H200 (docs/gpu.md).
  GatherOrder gather_algorithm = GatherOrder::kWarpPerEntry;
  uint32_t slices_per_row = 0;
  // With the cache: threads of the lookup kernel's block (256, 512 or 1024).
  uint32_t cache_lookup_threads = 512;
  // With the cache: warps that copy a step's misses in, in row order (0: each row its
  // own blocks, all at once).
  uint32_t cache_fill_warps = 1024;
  // With the cache: record hits_ready(layer) between the lookup and the fill, for
  // engines that start attention over the hits before the misses land (an event node
  // per layer in the step's graph otherwise not there).
  bool record_hits_ready = false;
};

class DecodeSession {
 public:
  // `client` and `regions` must outlive the session. FailedPrecondition without a CUDA
  // device; InvalidArgument naming a bad option; ResourceExhausted when the GPU lacks
  // the memory (the tables are allocated here, once).
  static absl::StatusOr<std::unique_ptr<DecodeSession>> Create(Client* client, GpuRegionRegistry* regions,
                                                               const DecodeSessionOptions& options);
  // Waits for the device and for the reservations in flight (each ends within the
  // client's rpc_timeout, twice over), then frees everything.
  ~DecodeSession();
  DecodeSession(const DecodeSession&) = delete;
  DecodeSession& operator=(const DecodeSession&) = delete;

  // ---- Between steps (never inside a capture) ----

  // Takes sequence `id`, whose first `tokens` tokens are written, into a free row (its
  // shape must match the options): its page tables go to the device, its cache instances
  // are emptied. Returns the row. ResourceExhausted when every row is taken.
  absl::StatusOr<uint32_t> Join(SequenceId id, uint64_t tokens, cudaStream_t stream);
  // Frees a row; its sequence is not released (the engine does that through the client).
  absl::Status Leave(uint32_t row, cudaStream_t stream);

  // A row the step could not serve, and why.
  struct RowFailure {
    uint32_t row;
    SequenceId sequence;
    absl::Status status;
  };
  // Whether a row that left with `failure` may join again later at the tokens it has:
  // its room could not be reserved for a while (the daemon away or restarting, the pool
  // full, a call cut off or asked to retry), not refused for good (its sequence gone,
  // a call malformed or not allowed, max_tokens reached).
  static bool MayJoinAgain(const absl::Status& failure) {
    return !(absl::IsNotFound(failure) || absl::IsInvalidArgument(failure) || absl::IsPermissionDenied(failure) ||
             absl::IsUnauthenticated(failure) || absl::IsOutOfRange(failure) || absl::IsFailedPrecondition(failure) ||
             absl::IsUnimplemented(failure) || absl::IsDataLoss(failure) || failure.ok());
  }
  // Before every step (every graph replay): reports what completed steps found (a row
  // released under the session is left, NotFound; a bad index or token,
  // InvalidArgument, and the row stays: the engine's error), makes sure every active
  // row has a page for the token the step appends (pages reserved ahead; it waits for a
  // reservation only when one fell behind), and takes the release fence for the step's
  // writes. A reservation that fails for a while (Unavailable, DeadlineExceeded:
  // the daemon away; ResourceExhausted: the pool full) costs the row nothing while it
  // has room: it asks again (every 100 ms at most) and leaves only if it runs out, with
  // that error, after which the engine may join it again at the tokens it has; its
  // token of this step is not appended. A reservation refused for good (NotFound, ...)
  // makes the row leave at once; a row at max_tokens leaves with OutOfRange. Whether a
  // failed row left: active(f.row) && sequence(f.row) == f.sequence is false. Returns an
  // error only for the session as a whole: the fence refused (FailedPrecondition:
  // nothing advanced, the step must not run, and PrepareStep may be called again; rows
  // already in `failures` did leave), or
  // a CUDA failure (the session is then unusable: destroy it). Once it returns OK the
  // step must run (the rows that left are not in it, the others advanced, and the
  // graph's end gives the fence back), failures or not.
  // With a ClientOptions::fetch_bytes_per_second it first holds the step to that rate
  // (Client::PaceFetch), and may sleep: the most the step can read is booked, every
  // active row's top-k (k, or the row's tokens with the one it appends when fewer) in
  // every layer the last enqueued step fetched, padding, the residency cache's hits and
  // rows that then fail included (the host cannot know them before the step); a step
  // that then cannot start (the fence refused) stays booked.
  absl::Status PrepareStep(cudaStream_t stream, std::vector<RowFailure>* failures);

  // Seeds the residency cache of `layer` for the active rows from top-k selections the
  // prefill made (its last windows), so the first decode steps start with hits. Between
  // steps; a no-op without the cache.
  absl::Status SeedCache(uint32_t layer, const int32_t* device_topk, cudaStream_t stream);

  // ---- The step: enqueued on `stream`, capturable in one CUDA graph ----

  absl::Status BeginStep(cudaStream_t stream);
  // Stores each active row's new token (its last) for `layer`: device_entries is
  // [max_batch][entry_bytes] in GPU memory; rows that are free are skipped.
  absl::Status WriteLayer(uint32_t layer, const std::byte* device_entries, cudaStream_t stream);
  // Delivers the entries `device_topk` ([max_batch][k] int32 in GPU memory, -1 padding)
  // selects for `layer`; rows that are free are skipped.
  absl::Status FetchLayer(uint32_t layer, const int32_t* device_topk, cudaStream_t stream);
  absl::Status EndStep(cudaStream_t stream);

  // Where FetchLayer(layer) delivers: entries as [entry_count][entry_bytes] (viewed as
  // blocks of 64 rows), and [max_batch][k] flat indices into them (-1: nothing). Without
  // the cache the buffer is shared by the layers l % buffers.
  struct Delivery {
    const std::byte* entries = nullptr;
    uint64_t entry_count = 0;
    const int32_t* flat_indices = nullptr;
  };
  Delivery delivered(uint32_t layer) const;
  // With the cache and record_hits_ready: recorded when FetchLayer(layer)'s lookup is
  // done, before its misses land: the hits' entries and every position's index are in
  // place; the misses of a row's instance (row * layers + layer) are listed by
  // miss_positions and miss_count.
  cudaEvent_t hits_ready(uint32_t layer) const;
  const uint16_t* miss_positions(uint32_t row, uint32_t layer) const;
  const uint32_t* miss_count(uint32_t row, uint32_t layer) const;

  // With the cache: hits and misses so far over every instance (waits for the device).
  absl::StatusOr<CacheCounters> cache_counters() const;

  const DecodeSessionOptions& options() const;
  // Tokens of a row after the last prepared step.
  uint64_t tokens(uint32_t row) const;
  SequenceId sequence(uint32_t row) const;
  bool active(uint32_t row) const;
  // Device memory the session holds, in bytes.
  uint64_t device_bytes() const;

 private:
  explicit DecodeSession(std::unique_ptr<internal::DecodeSessionImpl> impl);

  std::unique_ptr<internal::DecodeSessionImpl> impl_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_DECODE_SESSION_H_
