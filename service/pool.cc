#include "service/pool.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/node_ids.h"
#include "common/units.h"

namespace sparsepool {

using region_format::RecordState;

namespace {

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

absl::Status ValidateName(absl::string_view what, absl::string_view name) {
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " of ", name.size(),
                                                   " bytes is longer than ", kMaxNameBytes));
  }
  if (name.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " contains a NUL byte"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCreate(const CreateParams& p) {
  if (absl::Status s = ValidateName("client_id", p.client_id); !s.ok()) return s;
  if (absl::Status s = ValidateName("tenant", p.tenant); !s.ok()) return s;
  if (p.layers == 0 || p.layers > kMaxLayers) {
    return absl::InvalidArgumentError(
        absl::StrCat("layers ", p.layers, " is out of range [1, ", kMaxLayers, "]"));
  }
  if (p.entry_bytes == 0 || p.entry_bytes > kMaxEntryBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("entry_bytes ", p.entry_bytes, " is out of range [1, ", kMaxEntryBytes, "]"));
  }
  if (p.entry_alignment > 1 &&
      (!IsPowerOfTwo(p.entry_alignment) || p.entry_alignment > kMaxEntryAlignment)) {
    return absl::InvalidArgumentError(absl::StrCat("entry_alignment ", p.entry_alignment,
                                                   " is not a power of two up to ",
                                                   kMaxEntryAlignment));
  }
  if (p.page_tokens > kMaxPageTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_tokens ", p.page_tokens, " is above the limit of ", kMaxPageTokens));
  }
  if (p.tokens > kMaxTokens) {
    return absl::InvalidArgumentError(absl::StrCat("tokens ", p.tokens, " is above the limit of ",
                                                   kMaxTokens, " (token indices are int32)"));
  }
  if (p.stripes > p.layers) {
    return absl::InvalidArgumentError(absl::StrCat("stripes ", p.stripes, " is above the sequence's ", p.layers,
                                                   " layers (a stripe holds at least one layer)"));
  }
  return absl::OkStatus();
}

// Stripe `stripe` of `stripes` of a sequence: its share of the layers.
NewSequence StripeOf(const NewSequence& seq, uint32_t stripe, uint32_t stripes) {
  if (stripes <= 1) return seq;
  NewSequence part = seq;
  part.layers = region_format::StripeLayers(seq.layers, stripes, stripe);
  part.stripe_index = stripe;
  part.stripe_count = stripes;
  part.sequence_layers = seq.layers;
  return part;
}

uint64_t PagesFor(uint64_t tokens, uint32_t page_tokens) {
  return (tokens + page_tokens - 1) / page_tokens;
}

uint64_t RandomIncarnation() {
  std::random_device device;
  uint64_t value = 0;
  while (value == 0) value = (uint64_t{device()} << 32) | device();
  return value;
}

std::string Unknown(SequenceId id) {
  return absl::StrCat("unknown sequence ", id, " (never created, or released and evicted)");
}

// The tenants of each region, one entry per region.
std::vector<std::vector<std::string>> RegionTenants(const PoolOptions& options, size_t regions) {
  std::vector<std::vector<std::string>> tenants = options.region_tenants;
  tenants.resize(regions);
  return tenants;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pool>> Pool::Open(std::vector<std::unique_ptr<RegionStore>> regions,
                                                 PoolOptions options, const Clock* clock) {
  if (options.region_tenants.size() > regions.size()) {
    return absl::InvalidArgumentError(absl::StrCat("tenants given for ", options.region_tenants.size(),
                                                   " regions, but the pool has ", regions.size()));
  }
  const RegionAccess access(RegionTenants(options, regions.size()));
  // Every record by id: one, or a striped sequence's stripes by stripe index.
  absl::flat_hash_map<SequenceId, std::vector<std::optional<Part>>> seen;
  for (uint32_t r = 0; r < regions.size(); ++r) {
    for (SlotIndex slot : regions[r]->OccupiedSlots()) {
      const SequenceId id = regions[r]->record(slot).sequence_id;
      const std::string tenant = region_format::GetName(regions[r]->record(slot).tenant);
      if (!access.Serves(r, tenant) && regions[r]->record(slot).state != region_format::RecordState::kLive) {
        // Released already: nobody will ask for it, and its bytes must not stay
        // readable by the tenants the region now serves.
        regions[r]->Erase(slot);
        continue;
      }
      if (!access.Serves(r, tenant)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "region ", r, " (", regions[r]->ref().path, ") holds sequence ", id, " of tenant \"", tenant,
            "\", but the region is ",
            access.TenantsOf(r).empty() ? "shared" : absl::StrCat("dedicated to ", absl::StrJoin(access.TenantsOf(r), ",")),
            " and that tenant's sequences live elsewhere: whoever may map the region could read them. Put the "
            "region's tenant= options back as they were, or release the sequence under the old options first "
            "(released sequences are erased at start-up)"));
      }
      if (id < FirstIdOfNode(options.node_id) || id >= EndIdOfNode(options.node_id)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "region ", r, " (", regions[r]->ref().path, ") holds sequence ", id, ", which belongs to node ",
            NodeOfSequence(id), ", but this daemon is node ", options.node_id,
            ": start it with the node id it had when it issued that sequence"));
      }
      const auto& record = regions[r]->record(slot);
      const uint32_t stripes = std::max<uint32_t>(record.stripe_count, 1);
      auto [it, fresh] = seen.try_emplace(id, stripes);
      std::vector<std::optional<Part>>& parts = it->second;
      std::optional<Part> other;  // a record this one clashes with
      if (parts.size() != stripes) {
        other = *std::find_if(parts.begin(), parts.end(), [](const auto& part) { return part.has_value(); });
      } else if (parts[record.stripe_index].has_value()) {
        other = parts[record.stripe_index];
      } else if (!fresh) {
        const auto& first = *std::find_if(parts.begin(), parts.end(), [](const auto& part) { return part.has_value(); });
        const auto& a = regions[first->region]->record(first->slot);
        if (a.sequence_layers != record.sequence_layers || a.entry_bytes != record.entry_bytes ||
            a.entry_stride != record.entry_stride || a.page_tokens != record.page_tokens ||
            a.tenant != record.tenant || first->region == r) {
          other = first;
        }
      }
      if (other.has_value()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "sequence id ", id, " is held by two records that do not make one sequence: slot ", other->slot, " of ",
            regions[other->region]->ref().path, " and slot ", slot, " of ", regions[r]->ref().path,
            "; a layout naming it could mean either, so the pool does not start (regions of two "
            "pools put together, or a forged record: remove one region or reformat it)"));
      }
      parts[record.stripe_index] = Part{r, slot};
    }
  }
  absl::flat_hash_map<SequenceId, Location> recovered;
  std::vector<std::string> problems;
  for (const auto& [id, parts] : seen) {
    const size_t found = std::count_if(parts.begin(), parts.end(), [](const auto& part) { return part.has_value(); });
    if (found < parts.size()) {
      // Some stripes are not in this daemon's regions: a crash while it was created (the
      // home is committed first), or a region left off the command line. What is left
      // cannot serve every layer. Its memory is reclaimed like a released sequence's,
      // after the grace and the returning clients' acknowledgements (a client may still
      // hold its layout), never freed on the spot.
      std::vector<Part> present;
      for (const auto& part : parts) {
        if (part.has_value()) present.push_back(*part);
      }
      const bool live = std::any_of(present.begin(), present.end(), [&](const Part& part) {
        return regions[part.region]->record(part.slot).state == region_format::RecordState::kLive;
      });
      if (!parts[0].has_value() && live) {
        // Clients check the home record, in a region this daemon does not have: they
        // would take the sequence for live while its other stripes' memory was reused.
        return absl::FailedPreconditionError(absl::StrCat(
            "striped sequence ", id, " is live in ", regions[present[0].region]->ref().path,
            " (stripe ", regions[present[0].region]->record(present[0].slot).stripe_index, " of ", parts.size(),
            "), but its home record (stripe 0) is in none of this daemon's regions: start the daemon with every "
            "region it had"));
      }
      const uint64_t now_ns = static_cast<uint64_t>(absl::ToUnixNanos(clock->Now()));
      for (const Part& part : present) {  // the home first, when there is one
        if (regions[part.region]->record(part.slot).state == region_format::RecordState::kLive) {
          regions[part.region]->SetState(part.slot, region_format::RecordState::kExpired, now_ns);
        }
      }
      problems.push_back(absl::StrCat("striped sequence ", id, " had ", found, " of its ", parts.size(),
                                      " stripes in this daemon's regions; it is reclaimed like a released one"));
      Location& where = recovered[id];  // its parts, for the reclaim; never asked for a layout
      where.region = present[0].region;
      where.slot = present[0].slot;
      where.stripes.assign(present.begin() + 1, present.end());
      continue;
    }
    Location& where = recovered[id];
    where.region = parts[0]->region;
    where.slot = parts[0]->slot;
    for (size_t stripe = 1; stripe < parts.size(); ++stripe) where.stripes.push_back(*parts[stripe]);
  }
  return std::unique_ptr<Pool>(new Pool(std::move(regions), std::move(recovered), std::move(problems), options, clock));
}

Pool::Pool(std::vector<std::unique_ptr<RegionStore>> regions, absl::flat_hash_map<SequenceId, Location> recovered,
           std::vector<std::string> recovery_problems, PoolOptions options, const Clock* clock)
    : options_(options), clock_(clock), access_(RegionTenants(options, regions.size())),
      regions_(std::move(regions)), incarnation_(RandomIncarnation()),
      region_count_(regions_.size()), recovery_problems_(std::move(recovery_problems)),
      leases_(options.lease_timeout) {
  absl::MutexLock lock(&mu_);
  reclaimable_bytes_.assign(regions_.size(), 0);
  const absl::Time now = clock_->Now();
  // Recovered reclaimable sequences, oldest first: they take this incarnation's first
  // epochs, so every client that comes back fenced acknowledges them before their
  // memory is reused.
  std::vector<std::pair<uint64_t, SequenceId>> reclaimable;
  // Each region's limit is above every id it issued, and every region was given each
  // new limit: the highest one is above every id any of them issued.
  for (const auto& region : regions_) next_id_ = std::max(next_id_, region->id_limit());
  for (auto& [id, where] : recovered) {
    // The home record speaks for the sequence: a change reaches it first.
    const auto& record = regions_[where.region]->record(where.slot);
    next_id_ = std::max(next_id_, id + 1);
    ++recovered_;
    if (record.state == RecordState::kLive) {
      TenantUsage& usage = usage_[region_format::GetName(record.tenant)];
      usage.bytes += BytesOf(where);
      ++usage.sequences;
      usage.records += 1 + where.stripes.size();
      const std::string owner = region_format::GetName(record.owner);
      if (!owner.empty()) leases_.AddSequence(owner, id, now, region_format::GetName(record.tenant));
    } else {
      reclaimable.emplace_back(record.state_changed_unix_ns, id);
      for (const Part& part : where.Parts()) {
        reclaimable_bytes_[part.region] += regions_[part.region]->SequenceBytes(part.slot);
      }
    }
    sequences_[id] = std::move(where);
  }
  std::sort(reclaimable.begin(), reclaimable.end());
  for (const auto& [released_ns, id] : reclaimable) reclaim_order_.emplace(++release_epoch_, id);
  // A node of a cluster issues ids in its own range only (regions formatted before it
  // had a node id persisted ids below it).
  next_id_ = std::max(next_id_, FirstIdOfNode(options_.node_id));
  id_limit_ = next_id_;  // the first Create persists a block above everything issued
}

absl::StatusOr<SequenceId> Pool::NextId() {
  if (next_id_ < id_limit_) return next_id_;
  if (id_limit_ > EndIdOfNode(options_.node_id) - kIdBlock) {
    return absl::ResourceExhaustedError(
        absl::StrCat("sequence ids are used up (", id_limit_, " issued); ids are never reissued"));
  }
  id_limit_ += kIdBlock;
  for (auto& region : regions_) region->PersistIdLimit(id_limit_);
  return next_id_;
}

uint64_t Pool::NowNs() const { return static_cast<uint64_t>(absl::ToUnixNanos(clock_->Now())); }

uint64_t Pool::BytesOf(const Location& where) const {
  uint64_t bytes = 0;
  for (const Part& part : where.Parts()) bytes += regions_[part.region]->SequenceBytes(part.slot);
  return bytes;
}

uint64_t Pool::TokensOf(const Location& where) const {
  uint64_t tokens = regions_[where.region]->record(where.slot).tokens;
  for (const Part& part : where.stripes) tokens = std::min(tokens, regions_[part.region]->record(part.slot).tokens);
  return tokens;
}

SequenceLayout Pool::LayoutOf(const Location& where) const {
  SequenceLayout layout = regions_[where.region]->Layout(where.slot);
  if (where.stripes.empty()) return layout;
  const uint32_t stripes = 1 + static_cast<uint32_t>(where.stripes.size());
  std::vector<SequenceLayout> parts{layout};
  for (const Part& part : where.stripes) parts.push_back(regions_[part.region]->Layout(part.slot));
  layout.layers = regions_[where.region]->record(where.slot).sequence_layers;
  layout.tokens = TokensOf(where);
  for (const SequenceLayout& part : parts) layout.pages_per_layer = std::min(layout.pages_per_layer, part.pages_per_layer);
  for (size_t stripe = 1; stripe < parts.size(); ++stripe) layout.stripe_regions.push_back(parts[stripe].region);
  layout.page_offsets.resize(size_t{layout.layers} * layout.pages_per_layer);
  for (uint32_t layer = 0; layer < layout.layers; ++layer) {
    const SequenceLayout& part = parts[layer % stripes];
    const auto first = part.page_offsets.begin() + size_t{layer / stripes} * part.pages_per_layer;
    std::copy(first, first + layout.pages_per_layer, layout.page_offsets.begin() + size_t{layer} * layout.pages_per_layer);
  }
  return layout;
}

absl::Status Pool::AdmitClient(const Caller& caller) {
  const absl::string_view client_id = caller.client_id;
  if (client_id.empty()) return absl::OkStatus();
  if (absl::Status s = ValidateName("client_id", client_id); !s.ok()) return s;
  if (const std::string* tenant = leases_.TenantOf(client_id); tenant != nullptr) {
    if (caller.scoped && *tenant != caller.tenant) {
      return absl::PermissionDeniedError(absl::StrCat("client id \"", client_id,
                                                      "\" holds a lease of another tenant; tenant ", caller.tenant,
                                                      " must name clients of its own"));
    }
    leases_.Renew(client_id, clock_->Now(), caller.tenant);
    return absl::OkStatus();
  }
  if (caller.scoped) {
    // One tenant cannot take the whole lease table from the others.
    const uint64_t limit = caller.max_clients != 0 ? caller.max_clients : options_.max_leases / 2;
    if (leases_.CountOf(caller.tenant) >= limit) {
      return absl::ResourceExhaustedError(absl::StrCat("tenant ", caller.tenant, " holds ", leases_.CountOf(caller.tenant),
                                                       " client leases, its limit (max_clients ", limit,
                                                       "); client \"", client_id, "\" gets none until one expires"));
    }
  }
  if (leases_.size() >= options_.max_leases) {
    return absl::ResourceExhaustedError(absl::StrCat("the lease table is full: ", leases_.size(),
                                                     " clients hold leases (the daemon's limit); client \"",
                                                     client_id, "\" gets none until one expires"));
  }
  return absl::OkStatus();
}

void Pool::RenewIfNamed(const Caller& caller) {
  if (!caller.client_id.empty()) leases_.Renew(caller.client_id, clock_->Now(), caller.tenant);
}

absl::Status Pool::CheckQuota(const Caller& caller, uint64_t more_bytes, uint64_t more_sequences,
                              uint64_t more_records) const {
  if (caller.max_bytes == 0 && caller.max_sequences == 0) return absl::OkStatus();
  const auto it = usage_.find(caller.tenant);
  const TenantUsage usage = it == usage_.end() ? TenantUsage{} : it->second;
  if (caller.max_sequences_by_default && usage.records + more_records > caller.max_sequences) {
    // The default protects the other tenants' record slots, which stripes take too.
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant ", caller.tenant, " holds ", usage.records, " record slots (", usage.sequences,
        " live sequences, a striped one taking a slot per stripe) and this needs ", more_records,
        " more, past its quota of ", caller.max_sequences,
        " (half the record slots of the regions it shares, as the tenants file sets no max_sequences): release "
        "one first"));
  }
  if (!caller.max_sequences_by_default && caller.max_sequences != 0 &&
      usage.sequences + more_sequences > caller.max_sequences) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant ", caller.tenant, " holds ", usage.sequences, " live sequences, its quota (max_sequences ",
        caller.max_sequences, "): release one first"));
  }
  if (caller.max_bytes != 0 && usage.bytes + more_bytes > caller.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant ", caller.tenant, " holds ", FormatBytes(usage.bytes), " and this needs ", FormatBytes(more_bytes),
        " more, past its quota of ", FormatBytes(caller.max_bytes), " (max_bytes ", caller.max_bytes, ")"));
  }
  return absl::OkStatus();
}

absl::Status Pool::CheckTenant(const Caller& caller, SequenceId id) const {
  if (!caller.scoped) return absl::OkStatus();
  auto it = sequences_.find(id);
  if (it == sequences_.end()) return absl::OkStatus();  // FindLive names it unknown
  const std::string tenant = region_format::GetName(regions_[it->second.region]->record(it->second.slot).tenant);
  if (tenant == caller.tenant) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("sequence ", id, " belongs to another tenant; tenant ",
                                                  caller.tenant, " may act only on its own sequences"));
}

absl::StatusOr<Pool::Location> Pool::FindLive(SequenceId id) const {
  auto it = sequences_.find(id);
  if (it == sequences_.end()) return absl::NotFoundError(Unknown(id));
  const auto& record = regions_[it->second.region]->record(it->second.slot);
  switch (record.state) {
    case RecordState::kLive:
      return it->second;
    case RecordState::kReleased:
      return absl::NotFoundError(absl::StrCat("sequence ", id, " was released"));
    case RecordState::kExpired:
      return absl::NotFoundError(absl::StrCat("sequence ", id, " was reclaimed: the lease of its owner \"",
                                              region_format::GetName(record.owner), "\" expired"));
    case RecordState::kEmpty:
      break;
  }
  return absl::NotFoundError(Unknown(id));
}

void Pool::MakeReclaimable(const Location& where, RecordState state) {
  const uint64_t now = NowNs();
  // The release is in the record before its epoch exists: a fenced client that learns
  // of the epoch and then checks the record sees it. The home record first: it is the
  // one clients check.
  for (const Part& part : where.Parts()) {
    regions_[part.region]->SetState(part.slot, state, now);
    reclaimable_bytes_[part.region] += regions_[part.region]->SequenceBytes(part.slot);
  }
  const auto& record = regions_[where.region]->record(where.slot);
  reclaim_order_.emplace(++release_epoch_, record.sequence_id);
  TenantUsage& usage = usage_[region_format::GetName(record.tenant)];
  usage.bytes -= std::min(usage.bytes, BytesOf(where));
  usage.sequences -= std::min<uint64_t>(usage.sequences, 1);
  usage.records -= std::min<uint64_t>(usage.records, 1 + where.stripes.size());
}

Pool::Eviction Pool::EvictOldest(const std::vector<uint32_t>& regions, absl::Time* reusable_at) {
  const uint64_t grace_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(options_.reuse_grace));
  const uint64_t acknowledged = leases_.LowestAcknowledged();
  for (auto it = reclaim_order_.begin(); it != reclaim_order_.end(); ++it) {
    const Location& where = sequences_.at(it->second);
    // Skipped candidates cost no allocation: the scan runs under the pool's lock.
    const auto in_regions = [&](uint32_t r) { return std::binary_search(regions.begin(), regions.end(), r); };
    if (!in_regions(where.region) &&
        std::none_of(where.stripes.begin(), where.stripes.end(), [&](const Part& part) { return in_regions(part.region); })) {
      continue;
    }
    // Released after some fenced client's last acknowledgement: a write it began before
    // it learned of the release may still be landing in these pages (and in those of
    // every younger candidate).
    if (it->first > acknowledged) return Eviction::kAwaitingAcks;
    const uint64_t released_ns = regions_[where.region]->record(where.slot).state_changed_unix_ns;
    const uint64_t reusable_ns = released_ns + grace_ns;
    // A time further ahead than the grace means the clock was set back (or the record
    // came from a daemon whose clock ran ahead): waiting for it could take hours.
    if (const uint64_t now = NowNs(); now < reusable_ns && reusable_ns - now <= grace_ns) {
      // The oldest candidate is still in its grace, and so are the younger ones.
      *reusable_at = absl::FromUnixNanos(static_cast<int64_t>(reusable_ns));
      return Eviction::kInGrace;
    }
    // The home record last: until it is gone a restart finds the sequence whole.
    const std::vector<Part> parts = where.Parts();
    for (auto part = parts.rbegin(); part != parts.rend(); ++part) {
      reclaimable_bytes_[part->region] -= regions_[part->region]->SequenceBytes(part->slot);
      regions_[part->region]->Free(part->slot);
    }
    sequences_.erase(it->second);
    reclaim_order_.erase(it);
    ++evicted_;
    return Eviction::kEvicted;
  }
  return Eviction::kNone;
}

absl::Status Pool::PoolFull(absl::string_view what, uint64_t asked, size_t regions_needed,
                            const std::vector<uint32_t>& regions, Eviction eviction, absl::Time reusable_at,
                            absl::Time* retry_at) const {
  if (eviction == Eviction::kNone || eviction == Eviction::kEvicted) {
    return absl::ResourceExhaustedError(absl::StrCat("pool full: ", what, ", nothing reclaimable"));
  }
  uint64_t most_reclaimable = 0;
  size_t could_fit = 0;
  for (uint32_t r : regions) {
    most_reclaimable = std::max(most_reclaimable, reclaimable_bytes_[r]);
    if (regions_[r]->free_bytes() + reclaimable_bytes_[r] >= asked) ++could_fit;
  }
  if (could_fit < regions_needed) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "pool full: ", what, ", and what is being reclaimed (", FormatBytes(most_reclaimable),
        " in one region at most) would not make room either"));
  }
  if (eviction == Eviction::kAwaitingAcks) {
    // Acknowledgements come within a round trip from healthy clients, and the service
    // asks again as each arrives; it also asks again after kAcknowledgementPoll (a
    // client that stopped answering loses its lease, which ends the wait too).
    if (retry_at != nullptr) *retry_at = clock_->Now() + kAcknowledgementPoll;
    return absl::ResourceExhaustedError(absl::StrCat(
        "pool full for now: ", what, "; the reclaimable memory waits until ", leases_.fenced(),
        " fenced connection(s) confirm that no write of theirs begun before its release is still in flight "
        "(the slowest: \"", leases_.SlowestFenced(), "\", at release epoch ", leases_.LowestAcknowledged(),
        " of ", release_epoch_, "); a client that stops answering loses its lease after ",
        absl::FormatDuration(options_.lease_timeout)));
  }
  if (retry_at != nullptr) *retry_at = reusable_at;
  return absl::ResourceExhaustedError(absl::StrCat(
      "pool full for now: ", what, "; memory released or reclaimed in the last ",
      absl::FormatDuration(options_.reuse_grace), " becomes reusable in ",
      absl::FormatDuration(absl::Ceil(reusable_at - clock_->Now(), absl::Milliseconds(1))),
      " (the reuse grace, --reuse_grace)"));
}

void Pool::ZeroReusedPagesUnlocked(const RegionStore& region, const RegionStore::ReusedPages& pages) {
  if (pages.offsets.empty()) return;
  mu_.Unlock();
  region.ZeroReusedPages(pages);
  mu_.Lock();
}

absl::StatusOr<SequenceLayout> Pool::Create(const CreateParams& p, absl::Time* retry_at) {
  if (absl::Status valid = ValidateCreate(p); !valid.ok()) return valid;
  const uint32_t page_tokens = p.page_tokens == 0 ? options_.default_page_tokens : p.page_tokens;
  const uint32_t alignment = std::max<uint32_t>(p.entry_alignment, 1);
  const uint32_t stride = (p.entry_bytes + alignment - 1) / alignment * alignment;

  // Reserve under the lock, zero reused pages outside it (other clients' requests go
  // on meanwhile; nothing else can reach the reserved memory), commit under it.
  absl::MutexLock lock(&mu_);
  Caller caller(p.client_id, p.tenant, p.tenant_scoped);
  caller.max_bytes = p.max_bytes;
  caller.max_sequences = p.max_sequences;
  caller.max_clients = p.max_clients;
  if (caller.scoped && caller.max_sequences == 0 && !access_.HasOwnRegions(p.tenant)) {
    // A tenant without a sequence quota, in regions it shares, may take at most half
    // of their record slots: it cannot leave the others without a record to hold one.
    uint64_t slots = 0;
    for (uint32_t r : access_.RegionsOf(p.tenant)) slots += regions_[r]->record_slots();
    caller.max_sequences = std::max<uint64_t>(1, slots / 2);
    caller.max_sequences_by_default = true;
  }
  if (absl::Status admitted = AdmitClient(caller); !admitted.ok()) return admitted;
  const uint64_t asked = RegionStore::DataBytes(p.layers, page_tokens, stride, PagesFor(p.tokens, page_tokens));
  if (absl::Status within = CheckQuota(caller, asked, 1, std::max<uint32_t>(p.stripes, 1)); !within.ok()) return within;
  auto id = NextId();
  if (!id.ok()) return id.status();
  NewSequence seq;
  seq.id = *id;
  seq.layers = p.layers;
  seq.entry_bytes = p.entry_bytes;
  seq.entry_stride = stride;
  seq.page_tokens = page_tokens;
  seq.tokens = p.tokens;
  seq.tenant = p.tenant;
  seq.owner = p.client_id;
  seq.now_unix_ns = NowNs();
  // Only the regions that serve the tenant (its own, or the shared ones).
  const std::vector<uint32_t>& eligible = access_.RegionsOf(p.tenant);
  if (eligible.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no region serves tenant \"", p.tenant, "\": every region of this daemon is dedicated to other tenants "
        "(give it a region with tenant=", p.tenant, ", or a shared region without tenant= options)"));
  }
  const uint32_t stripes = std::max<uint32_t>(p.stripes, 1);
  if (stripes > eligible.size()) {
    return absl::InvalidArgumentError(absl::StrCat("stripes ", stripes, " needs as many regions, and ",
                                                   eligible.size(), " region(s) of this daemon serve tenant \"",
                                                   p.tenant, "\""));
  }
  // The largest stripe (stripe 0) must fit in one region.
  const uint64_t asked_in_one = RegionStore::DataBytes(region_format::StripeLayers(p.layers, stripes, 0), page_tokens,
                                                       stride, PagesFor(p.tokens, page_tokens));
  absl::Time reusable_at;
  Eviction eviction = Eviction::kNone;
  while (true) {
    // Most free space first: spreads sequences over regions. A placement key puts its
    // region first (eligible is in region order).
    std::vector<uint32_t> order = eligible;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return regions_[a]->free_bytes() > regions_[b]->free_bytes();
    });
    if (p.placement_key.has_value()) {
      const uint32_t preferred = eligible[*p.placement_key % eligible.size()];
      std::stable_partition(order.begin(), order.end(), [preferred](uint32_t r) { return r == preferred; });
    }
    // Each stripe in the next region of the order with room for it.
    std::vector<std::pair<uint32_t, RegionStore::PendingCreate>> prepared;
    absl::Status failure;
    for (uint32_t r : order) {
      if (prepared.size() == stripes) break;
      auto pending = regions_[r]->PrepareCreate(StripeOf(seq, static_cast<uint32_t>(prepared.size()), stripes));
      if (pending.ok()) {
        prepared.emplace_back(r, *std::move(pending));
      } else if (!absl::IsResourceExhausted(pending.status())) {
        failure = pending.status();
        break;
      }
    }
    if (failure.ok() && prepared.size() == stripes) {
      ++next_id_;
      for (const auto& [r, pending] : prepared) ZeroReusedPagesUnlocked(*regions_[r], pending.reused);
      Location where;  // prepared[i] is stripe i
      for (size_t stripe = 0; stripe < prepared.size(); ++stripe) {
        const auto& [r, pending] = prepared[stripe];
        const Part part{r, regions_[r]->CommitCreate(pending)};
        if (stripe == 0) {
          where.region = part.region;
          where.slot = part.slot;
        } else {
          where.stripes.push_back(part);
        }
      }
      ++created_;
      TenantUsage& usage = usage_[p.tenant];
      usage.bytes += BytesOf(where);
      ++usage.sequences;
      usage.records += stripes;
      if (!p.client_id.empty()) leases_.AddSequence(p.client_id, seq.id, clock_->Now(), p.tenant);
      SequenceLayout layout = LayoutOf(where);
      sequences_[seq.id] = std::move(where);
      return layout;
    }
    for (const auto& [r, pending] : prepared) regions_[r]->AbandonCreate(pending);
    if (!failure.ok()) return failure;
    eviction = EvictOldest(eligible, &reusable_at);
    if (eviction != Eviction::kEvicted) break;
  }
  uint64_t free = 0;
  for (uint32_t r : eligible) free += regions_[r]->free_bytes();
  const std::string need = absl::StrCat(
      "sequence of ", p.layers, " layers x ", p.tokens, " tokens x ", stride, " bytes needs ",
      FormatBytes(asked), " (", asked, " bytes) ",
      stripes == 1 ? std::string("in one region")
                   : absl::StrCat("in ", stripes, " regions, up to ", FormatBytes(asked_in_one), " in one"),
      "; ", FormatBytes(free), " (", free, " bytes) free across ", eligible.size(), " region(s)",
      access_.HasDedicated() ? absl::StrCat(" serving tenant \"", p.tenant, "\"") : "");
  return PoolFull(need, asked_in_one, stripes, eligible, eviction, reusable_at, retry_at);
}

absl::StatusOr<SequenceLayout> Pool::Extend(const Caller& caller, SequenceId id, uint64_t tokens,
                                            absl::Time* retry_at) {
  // Like Create: reserve under the lock, zero reused pages outside it, commit under it.
  // One growth of a sequence at a time; a release meanwhile undoes it (CommitExtend).
  absl::MutexLock lock(&mu_);
  if (absl::Status admitted = AdmitClient(caller); !admitted.ok()) return admitted;
  if (absl::Status mine = CheckTenant(caller, id); !mine.ok()) return mine;
  const auto not_growing = [this, id]() {
    mu_.AssertReaderHeld();
    return !growing_.contains(id);
  };
  mu_.Await(absl::Condition(&not_growing));
  auto where = FindLive(id);
  if (!where.ok()) return where.status();
  const auto& record = regions_[where->region]->record(where->slot);
  const uint64_t old_tokens = TokensOf(*where);
  if (tokens < old_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("cannot shrink sequence ", id, " from ",
                                                   old_tokens, " to ", tokens, " tokens"));
  }
  if (tokens > kMaxTokens) {
    return absl::InvalidArgumentError(absl::StrCat("tokens ", tokens, " is above the limit of ",
                                                   kMaxTokens, " (token indices are int32)"));
  }
  const std::vector<Part> parts = where->Parts();
  std::vector<uint32_t> part_regions;  // ascending, for EvictOldest
  uint64_t asked = 0;
  uint64_t asked_in_one = 0;  // the most one stripe's region must find
  for (const Part& part : parts) {
    const auto& r = regions_[part.region]->record(part.slot);
    const uint64_t pages = PagesFor(tokens, r.page_tokens);
    const uint64_t more =
        pages > r.pages_per_layer ? RegionStore::DataBytes(r.layers, r.page_tokens, r.entry_stride, pages - r.pages_per_layer) : 0;
    asked += more;
    asked_in_one = std::max(asked_in_one, more);
    part_regions.push_back(part.region);
  }
  std::sort(part_regions.begin(), part_regions.end());
  if (absl::Status within = CheckQuota(caller, asked, 0); !within.ok()) return within;
  const uint64_t old_bytes = BytesOf(*where);
  absl::Time reusable_at;
  Eviction eviction = Eviction::kNone;
  while (true) {
    std::vector<RegionStore::PendingExtend> prepared;  // prepared[i] grows parts[i]
    absl::Status failure;
    for (const Part& part : parts) {
      auto pending = regions_[part.region]->PrepareExtend(part.slot, tokens, NowNs());
      if (!pending.ok()) {
        failure = pending.status();
        break;
      }
      prepared.push_back(*std::move(pending));
    }
    if (failure.ok()) {
      growing_.insert(id);
      for (size_t i = 0; i < parts.size(); ++i) ZeroReusedPagesUnlocked(*regions_[parts[i].region], prepared[i].reused);
      growing_.erase(id);
      // NotFound when the sequence was released or reclaimed meanwhile: every stripe
      // changed with it under the lock, so each growth is undone alike.
      absl::Status committed;
      for (size_t i = 0; i < parts.size(); ++i) committed.Update(regions_[parts[i].region]->CommitExtend(prepared[i]));
      if (!committed.ok()) return committed;
      usage_[region_format::GetName(record.tenant)].bytes += BytesOf(*where) - old_bytes;
      RenewIfNamed(caller);
      return LayoutOf(*where);
    }
    for (size_t i = 0; i < prepared.size(); ++i) regions_[parts[i].region]->AbandonExtend(prepared[i]);
    if (!absl::IsResourceExhausted(failure)) return failure;
    eviction = EvictOldest(part_regions, &reusable_at);
    if (eviction != Eviction::kEvicted) break;
  }
  std::string free;
  for (const Part& part : parts) {
    const RegionStore& region = *regions_[part.region];
    absl::StrAppend(&free, free.empty() ? "" : ", ", region.ref().path, " has ", FormatBytes(region.free_bytes()), " (",
                    region.free_bytes(), " bytes) free");
  }
  const std::string need = absl::StrCat("growing sequence ", id, " from ", old_tokens, " to ", tokens,
                                        " tokens needs ", FormatBytes(asked), " (", asked, " bytes) in ",
                                        parts.size() == 1 ? "its region" : absl::StrCat("its ", parts.size(), " regions"),
                                        "; ", free);
  // Each stripe's region must find room (stripes differ by a layer at most: the largest
  // stripe's need stands for each).
  return PoolFull(need, asked_in_one, parts.size(), part_regions, eviction, reusable_at, retry_at);
}

absl::StatusOr<SequenceLayout> Pool::GetLayout(const Caller& caller, SequenceId id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status admitted = AdmitClient(caller); !admitted.ok()) return admitted;
  if (absl::Status mine = CheckTenant(caller, id); !mine.ok()) return mine;
  auto where = FindLive(id);
  if (!where.ok()) return where.status();
  RenewIfNamed(caller);
  return LayoutOf(*where);
}

absl::Status Pool::Release(const Caller& caller, SequenceId id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status admitted = AdmitClient(caller); !admitted.ok()) return admitted;
  if (absl::Status mine = CheckTenant(caller, id); !mine.ok()) return mine;
  auto it = sequences_.find(id);
  if (it == sequences_.end()) return absl::NotFoundError(Unknown(id));
  RenewIfNamed(caller);
  const auto& record = regions_[it->second.region]->record(it->second.slot);
  if (record.state != RecordState::kLive) return absl::OkStatus();
  leases_.RemoveSequence(region_format::GetName(record.owner), id);
  MakeReclaimable(it->second, RecordState::kReleased);
  return absl::OkStatus();
}

absl::StatusOr<SequenceLayout> Pool::Adopt(const Caller& caller, SequenceId id) {
  const absl::string_view client_id = caller.client_id;
  if (client_id.empty()) return absl::InvalidArgumentError("AdoptSequence needs a client_id: the new owner");
  if (absl::Status s = ValidateName("client_id", client_id); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (absl::Status admitted = AdmitClient(caller); !admitted.ok()) return admitted;
  if (absl::Status mine = CheckTenant(caller, id); !mine.ok()) return mine;
  auto where = FindLive(id);
  if (!where.ok()) return where.status();
  RenewIfNamed(caller);
  const std::string previous = region_format::GetName(regions_[where->region]->record(where->slot).owner);
  if (previous != client_id) {
    if (!previous.empty()) leases_.RemoveSequence(previous, id);
    // The home record first: it is the one a restart takes the owner from.
    for (const Part& part : where->Parts()) regions_[part.region]->SetOwner(part.slot, client_id);
    leases_.AddSequence(client_id, id, clock_->Now(), caller.tenant);
  }
  return LayoutOf(*where);
}

std::vector<SequenceSummary> Pool::List(absl::string_view tenant) {
  absl::MutexLock lock(&mu_);
  std::vector<SequenceSummary> out;
  for (const auto& [id, where] : sequences_) {
    const RegionStore& region = *regions_[where.region];
    const auto& r = region.record(where.slot);
    if (r.state != RecordState::kLive) continue;
    SequenceSummary s;
    s.id = id;
    s.tenant = region_format::GetName(r.tenant);
    if (!tenant.empty() && s.tenant != tenant) continue;
    s.owner = region_format::GetName(r.owner);
    s.layers = r.layers;
    s.entry_bytes = r.entry_bytes;
    s.tokens = TokensOf(where);
    s.bytes = BytesOf(where);
    s.region = where.region;
    s.stripes = 1 + static_cast<uint32_t>(where.stripes.size());
    if (s.stripes > 1) s.layers = r.sequence_layers;
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const SequenceSummary& a, const SequenceSummary& b) { return a.id < b.id; });
  return out;
}

absl::StatusOr<Pool::KeepAliveResult> Pool::KeepAlive(const Caller& caller, const FenceReport* fence) {
  const absl::string_view client_id = caller.client_id;
  if (client_id.empty()) return absl::InvalidArgumentError("KeepAlive needs a client_id");
  if (absl::Status s = ValidateName("client_id", client_id); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (absl::Status admitted = AdmitClient(caller); !admitted.ok()) return admitted;
  const absl::Time now = clock_->Now();
  leases_.Renew(client_id, now, caller.tenant);
  KeepAliveResult result;
  if (fence != nullptr && fence->closing) {
    // Nothing of the connection's is in flight, and nothing will be: no release waits
    // for it. The client's other connections stay fenced.
    result.reuse_unblocked = leases_.Unfence(client_id, fence->session);
  } else if (fence != nullptr) {
    const ReleaseEpoch& reported = fence->acknowledged;
    const std::optional<uint64_t> before = leases_.AcknowledgedBy(client_id, fence->session);
    uint64_t acknowledged = before.value_or(0);
    if (reported.incarnation == incarnation_) {
      acknowledged = std::max(acknowledged, std::min(reported.epoch, release_epoch_));
    } else if (reported.incarnation == 0 && !before.has_value()) {
      // A connection that has not written yet has nothing in flight: it owes no epoch so far.
      acknowledged = release_epoch_;
    }
    auto unblocked = leases_.Acknowledge(client_id, fence->session, acknowledged, now, caller.tenant);
    if (!unblocked.ok()) return unblocked.status();
    result.reuse_unblocked = *unblocked;
  }
  result.sequences = leases_.SequenceCount(client_id);
  result.current = ReleaseEpoch{incarnation_, release_epoch_};
  return result;
}

ReleaseEpoch Pool::release_epoch() const {
  absl::MutexLock lock(&mu_);
  return ReleaseEpoch{incarnation_, release_epoch_};
}

PoolStats Pool::Stats() {
  absl::MutexLock lock(&mu_);
  PoolStats stats;
  for (uint32_t r = 0; r < regions_.size(); ++r) {
    RegionUsage usage;
    usage.region = regions_[r]->ref();
    usage.capacity_bytes = regions_[r]->capacity_bytes();
    usage.free_bytes = regions_[r]->free_bytes();
    usage.reclaimable_bytes = reclaimable_bytes_[r];
    usage.used_bytes = usage.capacity_bytes - usage.free_bytes - usage.reclaimable_bytes;
    stats.capacity_bytes += usage.capacity_bytes;
    stats.free_bytes += usage.free_bytes;
    stats.reclaimable_bytes += usage.reclaimable_bytes;
    stats.used_bytes += usage.used_bytes;
    stats.regions.push_back(std::move(usage));
  }
  stats.reclaimable_sequences = static_cast<uint32_t>(reclaim_order_.size());
  stats.live_sequences = static_cast<uint32_t>(sequences_.size() - reclaim_order_.size());
  stats.leases = static_cast<uint32_t>(leases_.size());
  stats.sequences_created = created_;
  stats.sequences_evicted = evicted_;
  stats.leases_expired = leases_expired_;
  stats.sequences_recovered = recovered_;
  for (const auto& [tenant, usage] : usage_) {
    if (usage.sequences > 0) stats.tenants.push_back(TenantStats{tenant, usage.bytes, usage.sequences});
  }
  std::sort(stats.tenants.begin(), stats.tenants.end(), [](const TenantStats& a, const TenantStats& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.tenant < b.tenant;
  });
  if (stats.tenants.size() > kMaxTenantsReported) stats.tenants.resize(kMaxTenantsReported);
  return stats;
}

bool Pool::DropStaleFences() {
  absl::MutexLock lock(&mu_);
  return leases_.DropStaleFences(clock_->Now());
}

std::vector<LeaseTable::Expired> Pool::ExpireLeases() {
  absl::MutexLock lock(&mu_);
  std::vector<LeaseTable::Expired> expired = leases_.TakeExpired(clock_->Now());
  for (const auto& lease : expired) {
    ++leases_expired_;
    for (SequenceId id : lease.sequences) {
      auto where = FindLive(id);
      if (where.ok()) MakeReclaimable(*where, RecordState::kExpired);
    }
  }
  return expired;
}

}  // namespace sparsepool
