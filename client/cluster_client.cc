#include "client/cluster_client.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <numeric>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/client_internal.h"
#include "client/region_probe.h"
#include "cluster/cluster_records.h"
#include "cluster/etcd_client.h"
#include "common/node_ids.h"
#include "common/region_format.h"

namespace sparsepool::internal {
namespace {

using cluster::NodeRecord;

struct Node {
  NodeRecord record;               // as last registered
  bool registered = false;         // in etcd at the last read (placement takes only these)
  bool mappable = false;          // every region maps here: load and store
  std::shared_ptr<Client> client;  // made on first use; shared with calls in flight
};

// Bytes `layers` of a sequence take in a region, pages rounded up (alignment aside).
uint64_t NeededBytes(const SequenceSpec& spec, uint32_t layers) {
  const uint64_t page = spec.page_tokens == 0 ? 64 : spec.page_tokens;
  return uint64_t{layers} * ((spec.tokens + page - 1) / page * page) * spec.entry_bytes;
}
uint64_t NeededBytes(const SequenceSpec& spec) { return NeededBytes(spec, spec.layers); }

// Runs of consecutive rows of a batch on one node, as [first, end) row ranges: each run
// is one call to its node, on spans of the caller's own buffers (no copies).
std::vector<std::pair<size_t, size_t>> RunsByNode(absl::Span<const SequenceId> batch) {
  std::vector<std::pair<size_t, size_t>> runs;
  for (size_t row = 0; row < batch.size(); ++row) {
    if (runs.empty() || NodeOfSequence(batch[row]) != NodeOfSequence(batch[runs.back().first])) {
      runs.emplace_back(row, row);
    }
    runs.back().second = row + 1;
  }
  return runs;
}

class ClusterClient final : public Client {
 public:
  ClusterClient(ClientOptions options, std::unique_ptr<cluster::EtcdClient> etcd,
                std::shared_ptr<RatePacer> fetch_pacer)
      : options_(std::move(options)), etcd_(std::move(etcd)), fetch_pacer_(std::move(fetch_pacer)) {}

  ~ClusterClient() override {
    // The async worker first (its calls may still reach nodes), then the node clients,
    // each outside the lock: their destructors wait for calls in flight, whose callbacks
    // may call back into this client.
    {
      absl::MutexLock lock(&async_mu_);
      async_stopping_ = true;
    }
    if (async_worker_.joinable()) async_worker_.join();
    absl::flat_hash_map<uint32_t, Node> nodes;
    {
      absl::MutexLock lock(&mu_);
      nodes.swap(nodes_);
    }
  }

  // Reads the membership from etcd; nodes that came back as another incarnation (or at
  // another address) get a fresh connection on their next call.
  absl::Status Refresh() {
    auto nodes = cluster::ReadNodes(*etcd_, options_.etcd_prefix);
    if (!nodes.ok()) return nodes.status();
    // Probed outside the lock: it maps files.
    std::vector<bool> mappable;
    for (const NodeRecord& record : *nodes) {
      bool all = !record.regions().empty();
      for (const cluster::RegionRecord& region : record.regions()) {
        all = all && CanMapRegion(region.path(), region.uuid());
      }
      mappable.push_back(all);
    }
    absl::flat_hash_map<uint32_t, Node> fresh;
    absl::flat_hash_map<uint32_t, Node> replaced;  // destroyed after the lock is let go
    {
      absl::MutexLock lock(&mu_);
      for (size_t i = 0; i < nodes->size(); ++i) {
        NodeRecord& record = (*nodes)[i];
        Node node;
        node.registered = true;
        node.mappable = mappable[i];
        auto old = nodes_.find(record.node_id());
        if (old != nodes_.end() && old->second.record.incarnation() == record.incarnation() &&
            old->second.record.address() == record.address()) {
          node.client = old->second.client;
        }
        node.record = std::move(record);
        fresh[node.record.node_id()] = std::move(node);
      }
      // Nodes gone from etcd are remembered (their names for errors, their connections
      // for what still works without them, such as loads from memory this host maps),
      // but no longer placed on.
      for (auto& [id, node] : nodes_) {
        if (fresh.contains(id)) {
          replaced[id] = std::move(node);
          continue;
        }
        node.registered = false;
        fresh[id] = std::move(node);
      }
      nodes_ = std::move(fresh);
      // Counters only grow: what a replaced connection counted stays in the total (a
      // connection kept for the node's next record is not replaced).
      for (const auto& [id, node] : replaced) {
        const auto now = nodes_.find(id);
        if (node.client != nullptr && (now == nodes_.end() || now->second.client != node.client)) {
          retired_metrics_.Add(node.client->Metrics());
        }
      }
    }
    // A replaced node's old connection (another incarnation now answers there) ends
    // here, outside the lock: its destructor waits for its calls in flight.
    replaced.clear();
    return absl::OkStatus();
  }

  const std::string& client_id() const override { return options_.client_id; }

  absl::StatusOr<SequenceId> CreateSequence(const SequenceSpec& spec) override {
    if (absl::Status s = Refresh(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("cannot place a new sequence: ", s.message()));
    }
    const std::vector<uint32_t> candidates = Placement(spec);
    if (candidates.empty()) return NoRoom(spec);
    absl::Status last;
    for (uint32_t node : candidates) {
      auto client = NodeClient(node);
      if (!client.ok()) {
        last = client.status();
        continue;
      }
      auto id = (*client)->CreateSequence(spec);
      if (id.ok()) {
        // Until the node's record shows it, this placement counts against its free bytes
        // here, so that a burst of creates spreads instead of piling onto one node.
        absl::MutexLock lock(&mu_);
        placed_[node].push_back(Placed{absl::ToUnixMillis(absl::Now()), NeededBytes(spec), *id});
        return id;
      }
      last = Named(node, id.status());
      if (!absl::IsResourceExhausted(id.status()) && !absl::IsUnavailable(id.status())) return last;
    }
    return last;
  }

  // The async calls run the blocking ones on a thread of this client's (placement
  // reads etcd and may connect to a node; the caller's thread may be a gRPC one).
  void CreateSequenceAsync(const SequenceSpec& spec, std::function<void(absl::StatusOr<SequenceId>)> done) override {
    RunLater([this, spec, done = std::move(done)] { done(CreateSequence(spec)); });
  }

  void ReleaseSequenceAsync(SequenceId id, std::function<void(absl::Status)> done) override {
    RunLater([this, id, done = std::move(done)] { done(ReleaseSequence(id)); });
  }

  absl::Status ExtendSequence(SequenceId id, uint64_t total_tokens) override {
    return OnNode(id, [&](Client& c) { return c.ExtendSequence(id, total_tokens); });
  }
  absl::Status ReleaseSequence(SequenceId id) override {
    absl::Status s = OnNode(id, [&](Client& c) { return c.ReleaseSequence(id); });
    if (s.ok()) Forget(id);
    return s;
  }
  absl::Status AdoptSequence(SequenceId id) override {
    return OnNode(id, [&](Client& c) { return c.AdoptSequence(id); });
  }
  absl::StatusOr<SequenceInfo> Info(SequenceId id) override {
    absl::StatusOr<SequenceInfo> info = absl::UnknownError("unset");
    absl::Status s = OnNode(id, [&](Client& c) {
      info = c.Info(id);
      return info.status();
    });
    if (!s.ok()) return s;
    return info;
  }
  absl::Status WriteEntries(SequenceId id, uint32_t layer, uint64_t first_token,
                            absl::Span<const std::byte> entries) override {
    return OnNode(id, [&](Client& c) { return c.WriteEntries(id, layer, first_token, entries); });
  }

  absl::Status WriteStep(absl::Span<const SequenceId> batch, absl::Span<const uint64_t> positions,
                         absl::Span<const std::byte> entries) override {
    if (batch.empty() || positions.size() != batch.size() || entries.size() % batch.size() != 0) {
      return absl::InvalidArgumentError(absl::StrCat("a step of ", batch.size(), " sequences came with ",
                                                     positions.size(), " positions and ", entries.size(),
                                                     " bytes of entries"));
    }
    const size_t per_row = entries.size() / batch.size();
    for (const auto& [first, end] : RunsByNode(batch)) {
      const size_t rows = end - first;
      if (absl::Status s = OnNode(batch[first], [&](Client& c) {
            return c.WriteStep(batch.subspan(first, rows), positions.subspan(first, rows),
                               entries.subspan(first * per_row, rows * per_row));
          });
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status FetchTopK(uint32_t layer, absl::Span<const SequenceId> batch, absl::Span<const int32_t> indices,
                         absl::Span<std::byte> out) override {
    if (batch.empty() || indices.size() % batch.size() != 0 || indices.empty() ||
        out.size() % indices.size() != 0) {
      return absl::InvalidArgumentError(absl::StrCat("a fetch of ", batch.size(), " sequences came with ",
                                                     indices.size(), " indices and ", out.size(), " output bytes"));
    }
    // Rows on several nodes: each run of one node's rows is one call, straight into its
    // part of `out`.
    const size_t k = indices.size() / batch.size();
    const size_t row_bytes = out.size() / batch.size();
    for (const auto& [first, end] : RunsByNode(batch)) {
      const size_t rows = end - first;
      if (absl::Status s = OnNode(batch[first], [&](Client& c) {
            return c.FetchTopK(layer, batch.subspan(first, rows), indices.subspan(first * k, rows * k),
                               out.subspan(first * row_bytes, rows * row_bytes));
          });
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  // On the pacer every node connection shares: a fetch outside the client may read any
  // node's region.
  absl::Duration PaceFetch(uint64_t bytes) override {
    if (fetch_pacer_ == nullptr) return absl::ZeroDuration();
    const absl::Duration waited = fetch_pacer_->Acquire(bytes);
    if (waited > absl::ZeroDuration()) {
      absl::MutexLock lock(&mu_);
      pace_fetch_seconds_ += absl::ToDoubleSeconds(waited);
    }
    return waited;
  }

  // Every node connection's, summed (transports as each reached its node), and the
  // waits of PaceFetch.
  ClientMetrics Metrics() const override {
    absl::MutexLock lock(&mu_);
    ClientMetrics total = retired_metrics_;
    total.fetch_paced_seconds += pace_fetch_seconds_;
    for (const auto& [id, node] : nodes_) {
      if (node.client != nullptr) total.Add(node.client->Metrics());
    }
    return total;
  }

 private:
  // The documented policy (cluster_client.h), over the membership last read.
  std::vector<uint32_t> Placement(const SequenceSpec& spec) {
    // A striped sequence needs `stripes` regions, each with room for the largest stripe.
    const uint32_t stripes = std::max<uint32_t>(spec.stripes, 1);
    const uint64_t needed = NeededBytes(spec, region_format::StripeLayers(spec.layers, stripes, 0));
    struct Candidate {
      bool mappable;
      uint64_t free;
      std::string name;
      uint32_t node;
    };
    std::vector<Candidate> candidates;
    absl::MutexLock lock(&mu_);
    for (const auto& [id, node] : nodes_) {
      if (!node.registered) continue;
      std::vector<uint64_t> frees;  // of the regions serving the tenant
      for (const cluster::RegionRecord& region : node.record.regions()) {
        const bool serves = region.tenants().empty() ||
                            std::find(region.tenants().begin(), region.tenants().end(), spec.tenant) !=
                                region.tenants().end();
        if (serves) frees.push_back(region.free_bytes());
      }
      std::sort(frees.rbegin(), frees.rend());
      if (frees.size() < stripes || frees[stripes - 1] < needed) continue;
      // What the sequence's regions hold free: a stripe lives in one region.
      const uint64_t free = std::accumulate(frees.begin(), frees.begin() + stripes, uint64_t{0});
      // Ranked by what is left once this client's placements since the record was
      // written are counted too (a node refuses what does not fit, and the next is tried).
      auto& placed = placed_[id];
      placed.erase(std::remove_if(placed.begin(), placed.end(),
                                  [&](const Placed& p) { return p.at_ms < node.record.updated_unix_ms(); }),
                   placed.end());
      uint64_t left = free;
      for (const Placed& p : placed) left -= std::min(left, p.bytes);
      candidates.push_back({node.mappable, left, node.record.name(), id});
    }
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
      if (a.mappable != b.mappable) return a.mappable;
      if (a.free != b.free) return a.free > b.free;
      return a.name < b.name;
    });
    std::vector<uint32_t> order;
    for (const Candidate& c : candidates) order.push_back(c.node);
    return order;
  }

  absl::Status NoRoom(const SequenceSpec& spec) {
    absl::MutexLock lock(&mu_);
    const size_t registered =
        std::count_if(nodes_.begin(), nodes_.end(), [](const auto& n) { return n.second.registered; });
    if (registered == 0) {
      return absl::UnavailableError(absl::StrCat("no node is registered in the cluster at etcd ", etcd_->endpoints(),
                                                 " under ", options_.etcd_prefix));
    }
    return absl::ResourceExhaustedError(absl::StrCat("no node of the cluster (", registered,
                                                     " registered) has ",
                                                     spec.stripes > 1 ? absl::StrCat(spec.stripes, " regions") : "a region",
                                                     " with room for a sequence of ",
                                                     spec.layers, " layers x ", spec.tokens, " tokens x ",
                                                     spec.entry_bytes, " bytes for tenant \"", spec.tenant, "\""));
  }

  // The client of node `node`, connected on first use (the membership read again when
  // the node is unknown).
  absl::StatusOr<std::shared_ptr<Client>> NodeClient(uint32_t node) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      NodeRecord record;
      bool mappable = false;
      {
        absl::MutexLock lock(&mu_);
        auto it = nodes_.find(node);
        if (it != nodes_.end()) {
          if (it->second.client != nullptr) return it->second.client;
          if (it->second.registered) {
            record = it->second.record;
            mappable = it->second.mappable;
          }
        }
      }
      if (record.name().empty()) {
        if (attempt == 0 && Refresh().ok()) continue;
        return Named(node, absl::UnavailableError(absl::StrCat("not registered in the cluster at etcd ",
                                                               etcd_->endpoints(), " (down, or its lease expired)")));
      }
      // One connection per node: whoever connects first installs it; the others use it.
      absl::MutexLock connecting(&connect_mu_);
      {
        absl::MutexLock lock(&mu_);
        auto it = nodes_.find(node);
        if (it != nodes_.end() && it->second.client != nullptr) return it->second.client;
      }
      ClientOptions options = options_;
      options.address = record.address();
      options.etcd.clear();
      options.transport = mappable ? "cxl" : options_.remote_transport;
      auto connected = ConnectNode(options, fetch_pacer_);
      if (!connected.ok()) return Named(record, connected.status());
      std::shared_ptr<Client> client = *std::move(connected);
      absl::MutexLock lock(&mu_);
      auto it = nodes_.find(node);
      if (it == nodes_.end()) return client;  // gone meanwhile: serve this call anyway
      if (it->second.client == nullptr) it->second.client = client;
      return it->second.client;
    }
    return absl::InternalError("unreachable");
  }

  // Runs `call` on the sequence's node; a node that does not answer is looked up again
  // (it may have come back elsewhere) and tried once more.
  absl::Status OnNode(SequenceId id, const std::function<absl::Status(Client&)>& call) {
    const uint32_t node = NodeOfSequence(id);
    for (int attempt = 0;; ++attempt) {
      auto client = NodeClient(node);
      if (!client.ok()) return client.status();
      absl::Status s = call(**client);
      if ((!absl::IsUnavailable(s) && !absl::IsDeadlineExceeded(s)) || attempt > 0) return Named(node, s);
      const uint64_t before = Incarnation(node);
      if (!Refresh().ok() || Incarnation(node) == before || Incarnation(node) == 0) return Named(node, s);
    }
  }

  uint64_t Incarnation(uint32_t node) {
    absl::MutexLock lock(&mu_);
    auto it = nodes_.find(node);
    return it == nodes_.end() ? 0 : it->second.record.incarnation();
  }

  absl::Status Named(uint32_t node, const absl::Status& s) {
    if (s.ok()) return s;
    NodeRecord record;
    {
      absl::MutexLock lock(&mu_);
      auto it = nodes_.find(node);
      if (it != nodes_.end()) record = it->second.record;
    }
    if (record.name().empty()) record.set_node_id(node);
    return Named(record, s);
  }
  static absl::Status Named(const NodeRecord& record, const absl::Status& s) {
    if (s.ok() || (!absl::IsUnavailable(s) && !absl::IsDeadlineExceeded(s))) return s;
    // A node that does not answer within the deadline is unavailable to the caller, like
    // one that refuses the connection.
    if (record.name().empty()) return absl::UnavailableError(absl::StrCat("node id ", record.node_id(), ": ", s.message()));
    return absl::UnavailableError(absl::StrCat("node \"", record.name(), "\" (id ", record.node_id(), ", ",
                                               record.address(), "): ", s.message()));
  }

  // A released sequence no longer counts against its node's free bytes here.
  void Forget(SequenceId id) {
    absl::MutexLock lock(&mu_);
    auto it = placed_.find(NodeOfSequence(id));
    if (it == placed_.end()) return;
    auto& placed = it->second;
    placed.erase(std::remove_if(placed.begin(), placed.end(), [id](const Placed& p) { return p.id == id; }),
                 placed.end());
  }

  // Queues `call` for the async worker (started on first use), which runs calls in order
  // until the client is destroyed, finishing those queued by then.
  void RunLater(std::function<void()> call) {
    absl::MutexLock lock(&async_mu_);
    async_queue_.push_back(std::move(call));
    if (!async_worker_.joinable()) async_worker_ = std::thread([this] { AsyncLoop(); });
  }
  void AsyncLoop() {
    while (true) {
      std::function<void()> call;
      {
        absl::MutexLock lock(&async_mu_);
        async_mu_.Await(absl::Condition(
            +[](ClusterClient* c) ABSL_NO_THREAD_SAFETY_ANALYSIS { return c->async_stopping_ || !c->async_queue_.empty(); },
            this));
        if (async_queue_.empty()) return;  // stopping, nothing left
        call = std::move(async_queue_.front());
        async_queue_.pop_front();
      }
      call();
    }
  }

  const ClientOptions options_;
  const std::unique_ptr<cluster::EtcdClient> etcd_;
  // One rate over every node's connection (options_.fetch_bytes_per_second); null: unpaced.
  const std::shared_ptr<RatePacer> fetch_pacer_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint32_t, Node> nodes_ ABSL_GUARDED_BY(mu_);
  ClientMetrics retired_metrics_ ABSL_GUARDED_BY(mu_);  // of replaced node connections
  double pace_fetch_seconds_ ABSL_GUARDED_BY(mu_) = 0;  // PaceFetch's waits
  // Connecting to a node happens once at a time, so that no two clients of one client
  // id ever talk to one daemon (a second one's goodbye would end the first's fence).
  absl::Mutex connect_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex async_mu_;
  std::deque<std::function<void()>> async_queue_ ABSL_GUARDED_BY(async_mu_);
  bool async_stopping_ ABSL_GUARDED_BY(async_mu_) = false;
  std::thread async_worker_;
  // Per node: the sequences this client placed there since its record was last written.
  struct Placed {
    int64_t at_ms;
    uint64_t bytes;
    SequenceId id;
  };
  absl::flat_hash_map<uint32_t, std::vector<Placed>> placed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> ConnectCluster(const ClientOptions& options) {
  absl::StatusOr<std::shared_ptr<RatePacer>> pacer = FetchPacerFor(options);
  if (!pacer.ok()) return pacer.status();
  auto etcd = cluster::EtcdClient::Connect(options.etcd, options.rpc_timeout);
  if (!etcd.ok()) return etcd.status();
  auto client = std::make_unique<ClusterClient>(options, *std::move(etcd), *std::move(pacer));
  if (absl::Status s = client->Refresh(); !s.ok()) return s;
  return client;
}

}  // namespace sparsepool::internal
