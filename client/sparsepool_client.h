// sparsepool client: what a decode or prefill worker links to keep its latent KV cache
// in a sparsepool daemon's memory and fetch, at every decode step and layer, only the
// entries the indexer selected.
//
//   sparsepool::ClientOptions options;
//   options.address = "10.0.0.7:7070";
//   auto client = sparsepool::Client::Connect(options);
//   sparsepool::SequenceSpec spec;
//   spec.layers = 61; spec.entry_bytes = 656; spec.tokens = prompt_tokens;
//   auto seq = (*client)->CreateSequence(spec);
//   (*client)->WriteEntries(*seq, layer, /*first_token=*/0, prefill_entries);
//   ...each decode step: WriteStep(batch, positions, new_entries) (every layer of the
//   batch's new token, room reserved ahead), then for every layer
//   FetchTopK(layer, batch, topk_indices, decode_buffer).
//
// Sequences: one request's cache, `layers` x `tokens` entries of `entry_bytes` each.
// `tokens` is the room the pool holds and only grows (ExtendSequence, WriteStep's
// reservations); valid token indices are [0, tokens), and tokens never written read
// as zeros (the daemon zeroes reused pages).
//
// Data path: the client maps the daemon's regions (shared memory, hugetlbfs, CXL
// device-DAX) and reads and writes entries with plain loads and stores; the daemon is
// asked only for layouts, which are cached here and refreshed when a sequence grows.
//
// Leases: the client renews a lease in the background. If the process dies, the daemon
// reclaims its sequences after the lease timeout. Destroying the client does not
// release sequences.
//
// Errors: every call returns absl::Status whose message names the bad value:
// InvalidArgument (bad index, layer, size), NotFound (unknown or released sequence),
// ResourceExhausted (pool full, with the bytes asked and free), Unavailable (daemon
// gone). Thread-safe: calls may come from several threads at once.
#ifndef SPARSEPOOL_CLIENT_SPARSEPOOL_CLIENT_H_
#define SPARSEPOOL_CLIENT_SPARSEPOOL_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/client_metrics.h"

namespace sparsepool {

using SequenceId = uint64_t;

// The most ClientOptions::copy_threads accepts.
inline constexpr int kMaxCopyThreads = 64;

struct ClientOptions {
  // The daemon's gRPC address.
  std::string address = "127.0.0.1:7070";
  // A pool cluster instead of one daemon (docs/cluster.md): etcd's endpoints,
  // "HOST:PORT[,HOST:PORT...]", where the nodes register under `etcd_prefix`. New
  // sequences are placed on a node (those whose regions this host maps first, then the
  // most free bytes); every call on a sequence goes to its node. Empty: `address`.
  std::string etcd;
  std::string etcd_prefix = "/sparsepool";
  // In a cluster, how nodes whose regions this host cannot map are reached: "ucx" or
  // "verbs" (`transport` is not used there: nodes this host maps are reached by "cxl").
  std::string remote_transport = "ucx";
  // Names this client's lease; empty makes a unique one (host, pid, random).
  std::string client_id;
  // The background lease loop: it renews the lease at least this often, and fences
  // this client's writes (it learns of every release within a round trip and tells the
  // daemon when no write of this client begun before it is still in flight; only then
  // is the released memory reused). Zero turns it off: then only this client's own
  // requests renew its lease, and its writes are kept out of reused memory only by the
  // daemon's reuse grace (time).
  absl::Duration keepalive_interval = absl::Seconds(5);
  // Deadline of each control-plane call; a call that makes several RPCs (WriteStep
  // making room for a batch) keeps to it as a whole.
  absl::Duration rpc_timeout = absl::Seconds(10);
  // Data plane: "cxl" (load/store on mapped regions; shared memory on one host),
  // "ucx" (RDMA gets and puts; the daemon runs with --ucx=true; UCX_TLS picks the wire)
  // or "verbs" (RDMA READ/WRITE on an RC queue pair through libibverbs; the daemon runs
  // with --verbs=true; FailedPrecondition here when the host has no RDMA device).
  std::string transport = "cxl";
  // For "cxl": threads, the calling one included, that share the copying of each
  // FetchTopK and WriteEntries. One core reads scattered entries at about half to two
  // thirds of its contiguous-copy speed (it cannot keep enough misses in flight); a few
  // together fetch 2-5x as fast, and write 2-3x (docs/benchmarks.md). 1 copies on the
  // caller alone.
  int copy_threads = 1;
  // The most bytes a second this client's FetchTopK calls deliver (selected entries;
  // padding is not read), over every thread that calls them: each call waits before it
  // copies until the calls before it are paid for (common/rate_pacer.h). A tenant's
  // share of the decode host's memory bandwidth where the hardware does not divide it
  // (no resctrl); it binds only clients that set it. The waits are counted
  // (ClientMetrics::fetch_paced_seconds), not in the fetch latency. A cluster client
  // holds its fetches over all nodes to the one rate. A GPU decode session's gathers
  // (client/decode_session.h) are booked on the same rate before each step
  // (PaceFetch). 0: unpaced.
  uint64_t fetch_bytes_per_second = 0;
  // How far ahead of the rate's pay a burst of fetches may run (the layers of one
  // decode step come together): a longer one lets a quiet stream's bursts through
  // unheld while its average keeps to the rate.
  absl::Duration fetch_burst = absl::Milliseconds(1);
  // With a rate: a file through which every client that names it, in any process on
  // this host, books on one pacer: the rate is theirs together (a tenant's decode
  // workers on a host), taken as each one's demand goes, instead of a fixed part each.
  // On a tmpfs (such as /dev/shm), this user's alone; made (mode 0600) if absent;
  // Connect refuses another file (common/rate_pacer.h). Give every such client the same
  // rate and burst. Empty: the client's own pacer.
  std::string fetch_pacer_file;
  // For "verbs" (the batch timeout is rpc_timeout).
  struct Verbs {
    std::string device;      // empty: the first RDMA device listed
    uint8_t port = 1;
    uint8_t gid_index = 0;   // source GID on RoCE (v2 deployments often use 3)
    uint32_t queue_depth = 256;
  } verbs;
  // A daemon that serves tenants (sparsepoold --tenants) takes every call with the
  // tenant's token; it acts within that tenant. Empty: a daemon without tenants.
  std::string token;
  // TLS: the PEM file of the CA that signed the daemon's certificate (empty:
  // plaintext), and a client certificate chain and key for daemons that require one.
  std::string tls_root_certs;
  std::string tls_cert;
  std::string tls_key;
  // WriteStep reserves room this many tokens past what it writes, rounded up to whole
  // pages, and reserves again in the background once half of that is used: a decode
  // step makes no RPC of its own unless the pool falls behind.
  uint64_t reserve_tokens = 256;
};

// A sequence as the daemon describes it.
struct SequenceInfo {
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  uint32_t entry_stride = 0;
  uint32_t page_tokens = 0;
  uint64_t tokens = 0;  // room the pool holds (valid token indices are [0, tokens))
  std::string tenant;
};

struct SequenceSpec {
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  // Tokens to allocate room for now; grow later with ExtendSequence.
  uint64_t tokens = 0;
  std::string tenant;
  // Tokens per page; 0 takes the daemon's default (64).
  uint32_t page_tokens = 0;
  // Round each entry's slot up to this many bytes (64: cache-line aligned); 0: packed.
  uint32_t entry_alignment = 0;
  // Which region the sequence starts in, among those serving the tenant: key modulo
  // their number, when it has room (GPU rank r passes r: ranks start on different CXL
  // devices or NUMA nodes). Unset: the one with most free memory.
  std::optional<uint32_t> placement_key;
  // Spread the layers round robin over this many of the daemon's regions (several CXL
  // devices or NUMA nodes, read in parallel): layer l in stripe l % stripes, stripe 0
  // where the placement key puts it. 0 or 1: one region. The layout says where each
  // layer lives (SequenceLayout::LayerRegion); fetches and writes follow it.
  uint32_t stripes = 0;
};

class Client {
 public:
  // Connects and checks that the daemon answers. Unavailable if it does not.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  virtual ~Client() = default;

  virtual const std::string& client_id() const = 0;

  virtual absl::StatusOr<SequenceId> CreateSequence(const SequenceSpec& spec) = 0;
  // The same without waiting, for schedulers that admit and retire many requests at
  // once: returns at once, and `done` runs later on a gRPC thread with the result
  // (keep it short; it may call the Async methods again, not the blocking ones).
  // Destroying the client waits for the calls in flight.
  virtual void CreateSequenceAsync(const SequenceSpec& spec,
                                   std::function<void(absl::StatusOr<SequenceId>)> done) = 0;
  virtual void ReleaseSequenceAsync(SequenceId id, std::function<void(absl::Status)> done) = 0;
  // Grows the sequence to `total_tokens` tokens (not by). The same total is a no-op.
  virtual absl::Status ExtendSequence(SequenceId id, uint64_t total_tokens) = 0;
  virtual absl::Status ReleaseSequence(SequenceId id) = 0;
  // Takes the sequence over: from now on this client's lease keeps it alive, not its
  // creator's (a prefill worker writes a request's cache, the decode worker adopts it;
  // the prefill worker may then exit).
  virtual absl::Status AdoptSequence(SequenceId id) = 0;
  // The sequence's shape and room, asked of the daemon.
  virtual absl::StatusOr<SequenceInfo> Info(SequenceId id) = 0;

  // Stores the entries of tokens [first_token, first_token + n) of one layer, where
  // entries holds n * entry_bytes bytes. The tokens must exist (ExtendSequence first).
  virtual absl::Status WriteEntries(SequenceId id, uint32_t layer, uint64_t first_token,
                                    absl::Span<const std::byte> entries) = 0;
  // One decode step's new tokens, every layer of every sequence of a batch in one call:
  // the token at positions[i] of batch[i] gets entries [i][layer][entry_bytes] (every
  // sequence of the batch has the same layers and entry_bytes). Room is reserved ahead
  // (ClientOptions::reserve_tokens) and topped up in the background, so that a step
  // waits for an ExtendSequence RPC only when a sequence outgrows its room before the
  // background growth lands.
  virtual absl::Status WriteStep(absl::Span<const SequenceId> batch, absl::Span<const uint64_t> positions,
                                 absl::Span<const std::byte> entries) = 0;

  // For one layer of a batch: indices is [batch.size()][k] int32 token indices,
  // row-major (k = indices.size() / batch.size()); -1 is padding, whose output slot is
  // left untouched. out is [batch.size()][k][entry_bytes]. Every sequence of a batch
  // has the same entry_bytes. Nothing is read when any index is bad.
  virtual absl::Status FetchTopK(uint32_t layer, absl::Span<const SequenceId> batch,
                                 absl::Span<const int32_t> indices, absl::Span<std::byte> out) = 0;

  // What this client has counted since it connected (client_metrics.h): fetches and
  // writes per transport, each layer's fetch latency, stale layouts. For the engine to
  // export, e.g. ClientMetricsText(client->Metrics()) appended to its /metrics. A
  // Client of the engine's own (not made by Connect) counts nothing unless it says so.
  virtual ClientMetrics Metrics() const { return {}; }

  // Holds a fetch this client's FetchTopK does not make (a GPU gather reading the pool
  // itself, as the decode session's does) to ClientOptions::fetch_bytes_per_second,
  // as FetchTopK holds its own: `bytes` are booked on the same pacer, and the call
  // sleeps until they are paid for. Returns how long it slept (zero without a rate).
  virtual absl::Duration PaceFetch(uint64_t bytes) { return absl::ZeroDuration(); }
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_SPARSEPOOL_CLIENT_H_
