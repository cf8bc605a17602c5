// The pool: every region of the daemon, the table of sequences across them, client
// leases, and the policy for a full pool. The gRPC service is a thin layer over this;
// tests drive it directly, with a fake clock.
//
// Memory of a released sequence, or of one whose owner's lease ran out, is not freed
// at once: it becomes reclaimable and is evicted, oldest first, only when a request
// needs room, and never before it is safe to reuse. When nothing reclaimable is left a
// request fails with ResourceExhausted, saying how much it asked for and how much is
// free.
//
// When reuse is safe: a client that checked a sequence live and is writing through its
// layout when another client releases it must not land its bytes in pages a new
// sequence already holds. Every release (and lease expiry) takes the next release
// epoch; memory released at epoch e is reused only once every fenced client (one that
// takes part through KeepAlive, as the client library does) has acknowledged e, which
// it does only after every write it began before learning of e has finished
// (common/release_fence.h), or once its lease has run out. Writers that are not fenced
// (no lease loop) are kept out by time alone: memory is also reused only `reuse_grace`
// after its release. A request that needs memory still waiting for either fails with
// ResourceExhausted saying what it waits for, and sets `retry_at`: the gRPC service
// answers it then, or earlier when an acknowledgement arrives, without holding a
// thread meanwhile (service/delayed_calls.h).
//
// Thread-safe.
#ifndef SPARSEPOOL_SERVICE_POOL_H_
#define SPARSEPOOL_SERVICE_POOL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/layout.h"
#include "common/release_fence.h"
#include "service/clock.h"
#include "service/lease_table.h"
#include "service/region_access.h"
#include "service/region_store.h"

namespace sparsepool {

struct PoolOptions {
  uint32_t default_page_tokens = 64;
  absl::Duration lease_timeout = absl::Seconds(30);
  // How long reclaimable memory stays untouched before it may be reused.
  absl::Duration reuse_grace = absl::Seconds(1);
  // Clients holding leases at once; a request from a client beyond them is refused
  // (ResourceExhausted), so that made-up client ids cannot grow the daemon without end.
  size_t max_leases = 65536;
  // The tenants each region is dedicated to, by region index (service/region_access.h);
  // missing or empty: shared.
  std::vector<std::vector<std::string>> region_tenants;
  // The node of a pool cluster this pool is (common/node_ids.h): its ids are in the
  // node's range. 0: a pool on its own.
  uint32_t node_id = 0;
};

// Limits on what one sequence may ask for; each bounds a product the daemon computes.
inline constexpr uint32_t kMaxLayers = 1024;
inline constexpr uint32_t kMaxEntryBytes = 1 << 20;
inline constexpr uint32_t kMaxEntryAlignment = 4096;
inline constexpr uint32_t kMaxPageTokens = 1 << 16;
inline constexpr uint64_t kMaxTokens = kMaxSequenceTokens;

// Who makes a request: the client id it names (its lease), and the tenant it was
// authenticated as. A caller that is not `scoped` (a daemon without tenants, or an
// operator) may act on every tenant's sequences; a scoped one only on its tenant's,
// and only with client ids whose leases are its tenant's. A bare client id converts
// to an unscoped caller: the daemon without tenants, as tests and tools use it.
struct Caller {
  template <typename Id, typename = std::enable_if_t<std::is_convertible_v<const Id&, absl::string_view>>>
  Caller(const Id& client_id) : client_id(client_id) {}  // NOLINT: a bare id is an unscoped caller
  Caller(absl::string_view client_id, absl::string_view tenant, bool scoped)
      : client_id(client_id), tenant(tenant), scoped(scoped) {}

  absl::string_view client_id;  // empty: no lease
  absl::string_view tenant;
  bool scoped = false;
  // The tenant's quotas (service/tenants.h), over its live sequences; 0: none.
  uint64_t max_bytes = 0;
  uint64_t max_sequences = 0;
  uint64_t max_clients = 0;  // leases at once; 0 for a scoped caller: half of max_leases
  bool max_sequences_by_default = false;  // set by the pool: half of the shared record slots
};

struct CreateParams {
  std::string client_id;  // empty: no lease
  std::string tenant;
  bool tenant_scoped = false;  // the tenant was authenticated: the client id must be its
  uint64_t max_bytes = 0;      // the tenant's quotas over its live sequences; 0: none
  uint64_t max_sequences = 0;
  uint64_t max_clients = 0;    // as Caller::max_clients
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  uint32_t entry_alignment = 0;  // 0 or 1: packed
  uint32_t page_tokens = 0;      // 0: the pool's default
  uint64_t tokens = 0;
  // The region to start in: eligible[key % eligible.size()] first when set (the
  // regions serving the tenant, in index order); most free first otherwise and after.
  std::optional<uint32_t> placement_key;
  // Layers round robin over this many regions serving the tenant, one stripe each, in
  // the order above (stripe 0, the home, where the placement key puts it). 0 or 1: one
  // region.
  uint32_t stripes = 0;
};

struct SequenceSummary {
  SequenceId id = 0;
  std::string tenant;
  std::string owner;
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  uint64_t tokens = 0;
  uint64_t bytes = 0;
  uint32_t region = 0;   // the home region (a striped sequence's stripe 0)
  uint32_t stripes = 1;  // regions its layers are spread over
};

struct RegionUsage {
  RegionRef region;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t reclaimable_bytes = 0;
  uint64_t free_bytes = 0;
};

// What one tenant holds in live sequences ("" for a daemon without tenants).
struct TenantStats {
  std::string tenant;
  uint64_t bytes = 0;
  uint64_t sequences = 0;
};
// At most this many tenants are listed in PoolStats, those holding the most bytes:
// without a tenants file clients name tenants freely, and a report must stay bounded.
inline constexpr size_t kMaxTenantsReported = 64;

struct PoolStats {
  std::vector<RegionUsage> regions;
  std::vector<TenantStats> tenants;  // by bytes held, most first
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t reclaimable_bytes = 0;
  uint64_t free_bytes = 0;
  uint32_t live_sequences = 0;
  uint32_t reclaimable_sequences = 0;
  uint32_t leases = 0;
  uint64_t sequences_created = 0;
  uint64_t sequences_evicted = 0;
  uint64_t leases_expired = 0;
  uint64_t sequences_recovered = 0;
};

// How soon a request waiting for fenced clients' acknowledgements is retried at the
// latest (each acknowledgement retries it at once).
inline constexpr absl::Duration kAcknowledgementPoll = absl::Milliseconds(100);

// Sequence ids are issued in blocks of this many; the end of the block is persisted in
// every region before an id of it is handed out (region_format::IdCounter).
inline constexpr uint64_t kIdBlock = 1024;

class Pool {
 public:
  // `clock` must outlive the pool. Sequences already in the regions (recovered) are
  // indexed; those with an owner get a fresh lease, so a client has one timeout to
  // come back after a daemon restart. Ids resume above every id any of the regions may
  // have issued. FailedPrecondition, naming both places, when two recovered records
  // carry one id (regions of two pools put together, or a forged record): which one a
  // layout meant cannot be known, so the daemon does not start. Likewise, naming region,
  // sequence and tenant, when a region holds a live sequence of a tenant it is not
  // dedicated to (options.region_tenants changed): other tenants could map its pages.
  // Released ones there are erased (zeroed and freed). A striped sequence some of
  // whose stripes are missing (a crash amid its creation, or a region left out) is
  // reclaimed like a released one, and recovery_problems() says so; FailedPrecondition
  // when its home record is the missing one and a stripe is live (clients would check a
  // record the daemon cannot change), and, like two records of one id, for two records
  // of one stripe or stripes that disagree on the sequence's shape.
  static absl::StatusOr<std::unique_ptr<Pool>> Open(std::vector<std::unique_ptr<RegionStore>> regions,
                                                    PoolOptions options, const Clock* clock);

  // `retry_at`, when given, is set on a ResourceExhausted that waiting can cure: the
  // time the oldest reclaimable sequence in its reuse grace leaves it.
  absl::StatusOr<SequenceLayout> Create(const CreateParams& params, absl::Time* retry_at = nullptr);
  // Grows sequence `id` to `tokens` tokens in total. The same total again is a no-op;
  // a smaller one is InvalidArgument. `retry_at` as for Create.
  //
  // The calls on one sequence answer PermissionDenied, naming the sequence, when a
  // scoped caller's tenant is not the sequence's.
  absl::StatusOr<SequenceLayout> Extend(const Caller& caller, SequenceId id, uint64_t tokens,
                                        absl::Time* retry_at = nullptr);
  absl::StatusOr<SequenceLayout> GetLayout(const Caller& caller, SequenceId id);
  // Idempotent: releasing a sequence that is already released or expired succeeds.
  absl::Status Release(const Caller& caller, SequenceId id);
  // Moves a live sequence to the caller's lease (recorded in the region, so it survives
  // a restart): the hand-off from a prefill worker to a decode worker, within a tenant.
  // InvalidArgument for an empty or malformed client id; NotFound as for GetLayout.
  absl::StatusOr<SequenceLayout> Adopt(const Caller& caller, SequenceId id);
  std::vector<SequenceSummary> List(absl::string_view tenant);
  // What a fenced client reports in KeepAlive: the release epoch it has acknowledged,
  // of the daemon incarnation it names (0: a client that has written nothing yet), for
  // one of its connections (`session`; see LeaseTable).
  struct FenceReport {
    ReleaseEpoch acknowledged;
    bool closing = false;  // the connection writes nothing more: it is fenced no longer
    uint64_t session = 0;
  };
  struct KeepAliveResult {
    size_t sequences = 0;     // the client owns
    ReleaseEpoch current;     // this pool's latest release epoch
    bool reuse_unblocked = false;  // the acknowledgement let waiting memory be reused
  };
  // Renews the client's lease; with `fence`, makes it fenced and records its
  // acknowledgement (an acknowledgement of another incarnation counts for nothing,
  // except 0 from a client that has not written yet).
  absl::StatusOr<KeepAliveResult> KeepAlive(const Caller& caller, const FenceReport* fence = nullptr);
  ReleaseEpoch release_epoch() const;
  PoolStats Stats();

  // Marks the sequences of every client whose lease ran out as expired (reclaimable).
  // Returns the clients whose leases expired, for the log.
  std::vector<LeaseTable::Expired> ExpireLeases();
  // Forgets the fence sessions that stopped renewing while their lease lives on (a
  // connection that died without closing); returns whether memory waiting for them may
  // have become reusable.
  bool DropStaleFences();

  absl::Duration lease_timeout() const { return options_.lease_timeout; }
  // Random per start, never 0.
  uint64_t incarnation() const { return incarnation_; }
  size_t region_count() const { return region_count_; }
  // Which regions serve which tenants, and the data plane's domains.
  const RegionAccess& access() const { return access_; }
  // What recovery dropped at Open, for the log.
  const std::vector<std::string>& recovery_problems() const { return recovery_problems_; }

 private:
  struct Part {
    uint32_t region;
    SlotIndex slot;
  };
  // Where a sequence lives: its home record (stripe 0; its state and owner are the
  // sequence's, and every change reaches it first) and a striped sequence's other
  // stripes, in stripe order.
  struct Location {
    uint32_t region = 0;
    SlotIndex slot = 0;
    std::vector<Part> stripes;  // stripes 1.. ; empty when unstriped

    std::vector<Part> Parts() const {
      std::vector<Part> parts{Part{region, slot}};
      parts.insert(parts.end(), stripes.begin(), stripes.end());
      return parts;
    }
  };
  // Every stripe's records merged into the sequence's layout (the home region's alone
  // when unstriped). A crash amid a growth can leave stripes holding different token
  // counts: the layout holds the fewest, which every stripe has room for.
  SequenceLayout LayoutOf(const Location& where) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t TokensOf(const Location& where) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Heap bytes of every stripe.
  uint64_t BytesOf(const Location& where) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Zeroes pages an evicted sequence left behind with mu_ released, so that other
  // requests go on meanwhile (a long prompt reuses gigabytes); holds mu_ again after.
  // The caller has reserved the pages: nothing else can reach them.
  void ZeroReusedPagesUnlocked(const RegionStore& region, const RegionStore::ReusedPages& pages)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A live sequence; a clear error for one that is unknown, released or expired.
  absl::StatusOr<Location> FindLive(SequenceId id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // PermissionDenied when a scoped caller's tenant is not that of sequence `id` (its
  // records keep their tenant, and ids are never reissued, so the answer never changes).
  absl::Status CheckTenant(const Caller& caller, SequenceId id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every request naming a client starts here: InvalidArgument for a malformed id,
  // ResourceExhausted for a client without a lease when max_leases are held; renews the
  // lease of a client that has one. A new client gets its lease only when its request
  // succeeds (RenewIfNamed, or the sequence it takes), so failed requests leave nothing.
  // ResourceExhausted, naming the tenant and its quota, when `more_bytes`,
  // `more_sequences` and `more_records` (record slots: one per stripe) would take the
  // caller's tenant past a quota.
  absl::Status CheckQuota(const Caller& caller, uint64_t more_bytes, uint64_t more_sequences,
                          uint64_t more_records = 0) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // PermissionDenied when the client id's lease belongs to another tenant.
  absl::Status AdmitClient(const Caller& caller) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RenewIfNamed(const Caller& caller) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MakeReclaimable(const Location& where, region_format::RecordState state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees the oldest reclaimable sequence, in one of `regions` (ascending), whose grace has
  // passed: kEvicted. Otherwise kInGrace when the oldest is still in its grace (its end
  // in *reusable_at), or kNone when none is reclaimable.
  // kAwaitingAcks when it waits for a fenced client's acknowledgement.
  enum class Eviction { kEvicted, kInGrace, kAwaitingAcks, kNone };
  Eviction EvictOldest(const std::vector<uint32_t>& regions, absl::Time* reusable_at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ResourceExhausted of a request that found no room: `what` it needed, and either
  // when the memory in its grace becomes reusable (also set in *retry_at, if given;
  // eviction kInGrace) or that nothing is reclaimable (kNone).
  // A wait is offered only when `regions_needed` of `regions` (a striped sequence needs
  // one per stripe) could each make room for `asked` bytes once everything reclaimable
  // in them is reused: otherwise the request would wait for its deadline while other
  // clients' releases came and went (each too small for it), and is refused at once.
  absl::Status PoolFull(absl::string_view what, uint64_t asked, size_t regions_needed,
                        const std::vector<uint32_t>& regions, Eviction eviction, absl::Time reusable_at,
                        absl::Time* retry_at) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t NowNs() const;
  // The id the next created sequence gets, persisting a new block in every region
  // first when the current one is used up. ResourceExhausted once ids run out.
  absl::StatusOr<SequenceId> NextId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Pool(std::vector<std::unique_ptr<RegionStore>> regions, absl::flat_hash_map<SequenceId, Location> recovered,
       std::vector<std::string> recovery_problems, PoolOptions options, const Clock* clock);

  const PoolOptions options_;
  const Clock* const clock_;
  const RegionAccess access_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<RegionStore>> regions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<SequenceId, Location> sequences_ ABSL_GUARDED_BY(mu_);
  // Reclaimable sequences by the release epoch at which they became so: eviction order.
  std::map<uint64_t, SequenceId> reclaim_order_ ABSL_GUARDED_BY(mu_);
  const uint64_t incarnation_;  // random, never 0: names this pool's epochs
  uint64_t release_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  // Bytes held by reclaimable sequences, per region: kept up to date so that Stats
  // costs the same with a million released sequences as with none.
  std::vector<uint64_t> reclaimable_bytes_ ABSL_GUARDED_BY(mu_);
  // Sequences whose growth is zeroing reused pages outside the lock.
  absl::flat_hash_set<SequenceId> growing_ ABSL_GUARDED_BY(mu_);
  const size_t region_count_;
  const std::vector<std::string> recovery_problems_;
  LeaseTable leases_ ABSL_GUARDED_BY(mu_);
  // What each tenant's live sequences hold, for its quotas.
  struct TenantUsage {
    uint64_t bytes = 0;
    uint64_t sequences = 0;
    uint64_t records = 0;  // record slots: a striped sequence takes one per stripe
  };
  absl::flat_hash_map<std::string, TenantUsage> usage_ ABSL_GUARDED_BY(mu_);
  SequenceId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  SequenceId id_limit_ ABSL_GUARDED_BY(mu_) = 1;  // persisted in every region; next_id_ <= it
  uint64_t created_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evicted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t leases_expired_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t recovered_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_POOL_H_
