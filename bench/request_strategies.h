// The strategies of the request-level comparison (bench/request_run.h): requests join
// and leave a running decode batch, so each strategy admits and retires them one by
// one instead of serving a fixed batch (bench/fetch_strategy.h).
//   rdma-prefix-pull         admission adopts the sequence and pulls its whole prefix
//                            (every stored layer) into a local copy in host memory;
//                            steps gather the top-k from the copy on the CPU
//   rdma-prefix-pull-gpu     the same pull, the copy in HBM (pulled through a pinned
//                            staging buffer); steps gather from it with the pool's own
//                            GPU gather kernel: what a GPU decode worker of a dense pool
//                            does when the prefix fits in HBM
//   rdma-prefix-pull-pinned  the copy in pinned host memory; each step's top-k is
//                            gathered from it into HBM by the same kernel: when it does
//                            not fit
//   rdma-topk                admission adopts; steps fetch the selected entries over RDMA
//   cxl-cpu-topk             admission adopts; steps load the selected entries from the
//                            mapped region (CXL / host memory) on the CPU
//   cxl-gpu-topk             a DecodeSession (client/decode_session.h): the whole step,
//                            write-back and every layer's gather, one captured CUDA graph
//                            replayed every step; requests join and leave between steps
//   cxl-gpu-topk-cache       the same with the GPU residency cache
//
// Threads: Admit runs on the run's admission worker, one admission at a time (pulls of
// concurrent arrivals share one wire and queue behind each other), while the decode
// thread goes on calling Join, Step and Leave for the batch. Strategies keep what an
// admission builds apart from the running batch until Join.
#ifndef SPARSEPOOL_BENCH_REQUEST_STRATEGIES_H_
#define SPARSEPOOL_BENCH_REQUEST_STRATEGIES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/sparsepool_client.h"

namespace sparsepool::bench {

// What every request of a run shares, for strategies that size their state up front.
struct RequestShape {
  uint32_t max_batch = 0;      // requests decoding at once, at most (the run's concurrency)
  uint32_t stored_layers = 0;  // layers each request holds in the pool
  uint32_t fetched_layers = 0;  // fetched per step; fetched layer l reads l % stored_layers
  uint32_t entry_bytes = 0;
  uint32_t k = 0;
  uint32_t page_tokens = 64;
  uint64_t max_tokens = 0;  // the longest context a request reaches
  uint64_t reserve_tokens = 0;  // the GPU session's reserve ahead of each row (0: its default)
};

// A request in a step, and its context before the step.
struct StepRow {
  SequenceId id = 0;
  uint64_t tokens = 0;
};

// A request a Step could not serve, and why. `left`: it left the batch (its token of
// this step not appended); Join may take it again only when `status` says it may come
// back (DecodeSession::MayJoinAgain: room that could not be reserved for a while), not
// after NotFound (released under the step). Otherwise it stepped and the report is of
// an earlier step's delivery (a bad index: the caller's error).
struct StepFailure {
  SequenceId id = 0;
  absl::Status status;
  bool left = false;
};

class RequestStrategy {
 public:
  virtual ~RequestStrategy() = default;
  virtual std::string name() const = 0;
  // The decode worker's client: it adopts and releases the requests.
  virtual Client& client() = 0;

  // Before the clock starts, with every prompt in the pool: what an engine does once at
  // start-up (pinning the pool's regions for the GPU).
  virtual absl::Status WarmUp(absl::Span<const SequenceId> prompts) { return absl::OkStatus(); }
  // On the admission worker: everything request `id` needs before it can join the batch
  // that does not touch the batch (the hand-off, the prefix pull). Its prompt of
  // `tokens` tokens is in the pool; it grows to at most `max_tokens`.
  virtual absl::Status Admit(SequenceId id, uint64_t tokens, uint64_t max_tokens) = 0;
  // On the decode thread, between steps: the admitted request joins the batch.
  virtual absl::Status Join(SequenceId id, uint64_t tokens) { return absl::OkStatus(); }
  // On the decode thread, between steps: it leaves (its sequence is released after).
  virtual void Leave(SequenceId id) = 0;

  // One decode step of `rows`: row i's new token (position rows[i].tokens) gets the
  // entries new_entries[i][stored layer][entry bytes], stored in the pool; then every
  // fetched layer's top-k (indices [fetched layers][rows][k], -1 padding) is delivered
  // where the attention reads it. Returns once the last layer's entries are there.
  // A step some requests of which failed returns the first failure, and
  // LastStepFailures lists them all; the others stepped. Any other error: none stepped.
  virtual absl::Status Step(absl::Span<const StepRow> rows, absl::Span<const std::byte> new_entries,
                            absl::Span<const int32_t> indices) = 0;
  virtual absl::Span<const StepFailure> LastStepFailures() const { return {}; }
  // The entry the last Step delivered for (row, position) of its last fetched layer:
  // the run checks these against what was written.
  virtual absl::Status ReadEntry(uint32_t row, uint32_t position, absl::Span<std::byte> out) = 0;
  // The part of the last Step that waited for its delivery (the GPU's work, from its
  // launch to the stream's end), where the strategy tells it apart from the rest.
  virtual std::optional<double> LastStepWaitSeconds() const { return std::nullopt; }

  // Bytes moved by admissions so far, and the local copies held now (either thread).
  virtual uint64_t AdmissionBytes() const { return 0; }
  virtual uint64_t LocalBytes() const { return 0; }
};

// The CPU strategies. `client` (and the pull's `pull_client`, its own endpoint, as a
// transfer engine beside the decode worker's would be) use the transport the name says.
std::unique_ptr<RequestStrategy> MakeTopKRequests(std::string name, std::unique_ptr<Client> client,
                                                  const RequestShape& shape);
std::unique_ptr<RequestStrategy> MakePrefixPullRequests(std::string name, std::unique_ptr<Client> client,
                                                        std::unique_ptr<Client> pull_client,
                                                        const RequestShape& shape);

// The GPU strategies (bench/request_gpu_strategies.cc): FailedPrecondition when this
// process sees no CUDA device. Their state for `shape.max_batch` requests is allocated
// here, before the run.
// cxl-gpu-topk(-cache): `client` uses transport "cxl"; cache_slots 0 means no cache.
absl::StatusOr<std::unique_ptr<RequestStrategy>> MakeSessionRequests(std::string name, std::unique_ptr<Client> client,
                                                                     const RequestShape& shape, uint32_t cache_slots);
// rdma-prefix-pull-gpu / -pinned: copies in HBM (`copies_in_hbm`) or pinned host memory.
absl::StatusOr<std::unique_ptr<RequestStrategy>> MakeGpuPrefixPullRequests(std::string name,
                                                                           std::unique_ptr<Client> client,
                                                                           std::unique_ptr<Client> pull_client,
                                                                           const RequestShape& shape,
                                                                           bool copies_in_hbm);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_REQUEST_STRATEGIES_H_
