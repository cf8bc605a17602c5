// The strategies of the request-level comparison (bench/request_run.h): requests join
// and leave a running decode batch, so each strategy admits and retires them one by
// one instead of serving a fixed batch (bench/fetch_strategy.h).
//   rdma-prefix-pull  admission adopts the sequence and pulls its whole prefix (every
//                     stored layer) into a local copy; steps gather from the copy
//   rdma-topk         admission adopts; steps fetch the selected entries over RDMA
//   cxl-cpu-topk      admission adopts; steps load the selected entries from the
//                     mapped region (CXL / host memory)
// The GPU strategies are not here yet: the request-level run is CPU-side.
#ifndef SPARSEPOOL_BENCH_REQUEST_STRATEGIES_H_
#define SPARSEPOOL_BENCH_REQUEST_STRATEGIES_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/sparsepool_client.h"

namespace sparsepool::bench {

class RequestStrategy {
 public:
  virtual ~RequestStrategy() = default;
  virtual std::string name() const = 0;
  // The decode worker's client: it adopts, appends to and releases the requests.
  virtual Client& client() = 0;
  // Admits request `id`, whose prompt of `tokens` tokens the prefill worker left in the
  // pool, and which grows to at most `max_tokens`: all that must happen before its
  // first step.
  virtual absl::Status Admit(SequenceId id, uint64_t tokens, uint64_t max_tokens) = 0;
  virtual void Leave(SequenceId id) = 0;
  // Row `id` now has `tokens` tokens; the new entries are in the pool.
  virtual absl::Status Appended(SequenceId id, uint64_t tokens) { return absl::OkStatus(); }
  // One layer of a step: the selections of every row ([rows][k], -1 padding) into
  // `out` ([rows][k][entry bytes]), where the attention reads them.
  virtual absl::Status Fetch(uint32_t pool_layer, absl::Span<const SequenceId> rows,
                             absl::Span<const int32_t> indices, absl::Span<std::byte> out) = 0;
  // Bytes moved by admissions so far, and the local copies held now.
  virtual uint64_t AdmissionBytes() const { return 0; }
  virtual uint64_t LocalBytes() const { return 0; }
};

// `client` uses the transport the name says. `stored_layers`: layers each request holds
// in the pool (the prefix pull copies them all).
std::unique_ptr<RequestStrategy> MakeTopKRequests(std::string name, std::unique_ptr<Client> client);
std::unique_ptr<RequestStrategy> MakePrefixPullRequests(std::string name, std::unique_ptr<Client> client,
                                                        uint32_t stored_layers, uint32_t entry_bytes);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_REQUEST_STRATEGIES_H_
