// libFuzzer: the daemon's request handlers (service/pool_service.h) as gRPC hands them
// requests. Each input is a run of calls: a handler, a caller (tenant acme, which has a
// region of its own; tenant globex, which shares the other two; an operator) and bytes
// parsed as that RPC's protobuf message, as the wire would deliver them. Small
// sequence ids are mapped onto ids the pool issued, and short client ids onto a few
// real ones, so that calls reach sequences instead of stopping at "unknown".
//
// Whatever the bytes: every answer is a status a client can act on (never INTERNAL,
// UNKNOWN or DATA_LOSS); a tenant's replies name only its own sequences, in regions
// that serve it; and the pool's books balance after every input. The pool lives across
// inputs (as a daemon does): a finding may need the inputs before it to reproduce, so
// libFuzzer's crash file is a start, the run's log the rest.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/layout_proto.h"
#include "service/pool.h"
#include "service/pool_service.h"
#include "service/region_store.h"
#include "service/tenants.h"
#include "tests/fake_clock.h"
#include "tests/fuzz/fuzz_check.h"
#include "transport/cxl/region_mapping.h"

namespace sparsepool {
namespace {

constexpr char kTenants[] =
    "tenant acme token_sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 max_sequences=40\n"
    "tenant globex token_sha256=60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\n"
    "operator ops token_sha256=fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13\n";

struct Daemon {
  testing::FakeClock clock;
  std::unique_ptr<Pool> pool;
  std::unique_ptr<TenantDirectory> tenants;
  std::unique_ptr<PoolServiceImpl> service;
  std::vector<const Tenant*> callers;  // acme, globex, ops
  std::vector<uint64_t> ids = {1};     // ids the pool issued (and one that may not exist)
};

Daemon* Start() {
  auto* daemon = new Daemon;
  static char dir_template[] = "/tmp/sparsepool-fuzz-pool-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  FUZZ_CHECK(dir != nullptr);
  // The region files go when the fuzzer exits (they stay mapped until then).
  std::atexit([] {
    for (int r = 0; r < 3; ++r) unlink(absl::StrCat(dir_template, "/region-", r).c_str());
    rmdir(dir_template);
  });
  std::vector<std::unique_ptr<RegionStore>> regions;
  for (uint32_t r = 0; r < 3; ++r) {
    RegionSpec spec;
    spec.path = absl::StrCat(dir, "/region-", r);
    spec.size_bytes = 4 << 20;
    auto mapped = MappedRegion::OpenOrCreate(spec);
    FUZZ_CHECK(mapped.ok());
    RecoveryReport report;
    auto store = RegionStore::Open(r, *std::move(mapped), 64, 0, &report);
    FUZZ_CHECK(store.ok());
    regions.push_back(*std::move(store));
  }
  PoolOptions options;
  options.lease_timeout = absl::Seconds(5);
  options.reuse_grace = absl::ZeroDuration();
  options.region_tenants = {{"acme"}, {}, {}};  // two shared regions: globex's sequences may be striped
  auto pool = Pool::Open(std::move(regions), options, &daemon->clock);
  FUZZ_CHECK(pool.ok());
  daemon->pool = *std::move(pool);
  auto tenants = TenantDirectory::Parse(kTenants, "fuzz");
  FUZZ_CHECK(tenants.ok());
  daemon->tenants = std::make_unique<TenantDirectory>(*std::move(tenants));
  for (const Tenant& entry : daemon->tenants->entries()) daemon->callers.push_back(&entry);
  daemon->service = std::make_unique<PoolServiceImpl>(daemon->pool.get(), &daemon->clock, nullptr, nullptr, nullptr,
                                                      daemon->tenants.get());
  return daemon;
}

// Codes a handler may answer with: each tells the client what to do next.
bool Actionable(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::UNIMPLEMENTED:
      return false;
    default:
      return true;
  }
}

template <typename Message>
Message Parse(const uint8_t* data, size_t size, Daemon& daemon, const Tenant* who) {
  Message message;
  message.ParseFromArray(data, static_cast<int>(size));  // a failed parse leaves a partial message: sent as is
  if constexpr (std::is_same_v<Message, v1::CreateSequenceRequest> ||
                std::is_same_v<Message, v1::ListSequencesRequest>) {
    return message;
  } else {
    if (message.sequence_id() < 64) message.set_sequence_id(daemon.ids[message.sequence_id() % daemon.ids.size()]);
    return message;
  }
}

// Short client ids become one of a few real ones of the caller's tenant.
template <typename Message>
void RealClient(Message& message, const Tenant* who) {
  if (message.client_id().size() <= 1) {
    message.set_client_id(absl::StrCat(who->name, "-worker-", message.client_id().empty() ? 0 : message.client_id()[0] % 3));
  }
}

// A layout is whole (every page inside its layer's region); a tenant's is its own, in
// regions that serve it (every stripe's).
void CheckLayout(const Daemon& daemon, const Tenant* who, const v1::SequenceLayout& layout) {
  FUZZ_CHECK(LayoutFromProto(layout).ok());
  if (who->is_operator) return;
  FUZZ_CHECK(layout.tenant() == who->name);
  FUZZ_CHECK(daemon.pool->access().Serves(layout.region().index(), who->name));
  for (const v1::RegionInfo& stripe : layout.stripe_regions()) {
    FUZZ_CHECK(daemon.pool->access().Serves(stripe.index(), who->name));
  }
}

void Call(Daemon& daemon, uint8_t op, const Tenant* who, const uint8_t* data, size_t size) {
  PoolServiceImpl& service = *daemon.service;
  absl::Time retry_at;
  grpc::Status status;
  switch (op % 11) {
    case 0:
    case 1: {
      auto request = Parse<v1::CreateSequenceRequest>(data, size, daemon, who);
      RealClient(request, who);
      if (request.tokens() > (1u << 16)) request.set_tokens(request.tokens() % (1u << 16));
      if (request.stripes() > 4) request.set_stripes(request.stripes() % 4);  // some striped creates succeed
      v1::CreateSequenceResponse response;
      status = service.HandleCreateSequence(who, request, &response, &retry_at);
      if (status.ok()) {
        CheckLayout(daemon, who, response.layout());
        daemon.ids.push_back(response.layout().sequence_id());
      }
      break;
    }
    case 2: {
      auto request = Parse<v1::ExtendSequenceRequest>(data, size, daemon, who);
      RealClient(request, who);
      v1::ExtendSequenceResponse response;
      status = service.HandleExtendSequence(who, request, &response, &retry_at);
      if (status.ok()) CheckLayout(daemon, who, response.layout());
      break;
    }
    case 3: {
      auto request = Parse<v1::GetLayoutRequest>(data, size, daemon, who);
      v1::GetLayoutResponse response;
      status = service.HandleGetLayout(who, request, &response);
      if (status.ok()) CheckLayout(daemon, who, response.layout());
      break;
    }
    case 4: {
      auto request = Parse<v1::ReleaseSequenceRequest>(data, size, daemon, who);
      v1::ReleaseSequenceResponse response;
      status = service.HandleReleaseSequence(who, request, &response);
      break;
    }
    case 5: {
      auto request = Parse<v1::AdoptSequenceRequest>(data, size, daemon, who);
      RealClient(request, who);
      v1::AdoptSequenceResponse response;
      status = service.HandleAdoptSequence(who, request, &response);
      if (status.ok()) CheckLayout(daemon, who, response.layout());
      break;
    }
    case 6: {
      auto request = Parse<v1::ListSequencesRequest>(data, size, daemon, who);
      v1::ListSequencesResponse response;
      status = service.HandleListSequences(who, request, &response);
      if (status.ok() && !who->is_operator) {
        for (const auto& sequence : response.sequences()) FUZZ_CHECK(sequence.tenant() == who->name);
      }
      break;
    }
    case 7: {
      v1::KeepAliveRequest request;
      request.ParseFromArray(data, static_cast<int>(size));
      RealClient(request, who);
      v1::KeepAliveResponse response;
      bool reuse_unblocked = false;
      status = service.HandleKeepAlive(who, request, &response, &reuse_unblocked);
      break;
    }
    case 8: {
      v1::StatsRequest request;
      v1::StatsResponse response;
      status = service.HandleStats(who, request, &response);
      FUZZ_CHECK(status.ok() == who->is_operator);
      break;
    }
    case 9: {
      v1::ConnectVerbsRequest request;
      request.ParseFromArray(data, static_cast<int>(size));
      v1::ConnectVerbsResponse response;
      status = service.HandleConnectVerbs(who, request, &response);
      FUZZ_CHECK(!status.ok());  // this daemon serves no libibverbs
      break;
    }
    case 10:
      // Time passes: leases run out and their sequences become reclaimable.
      daemon.clock.Advance(absl::Seconds(size % 8));
      daemon.pool->ExpireLeases();
      service.ReleasesChanged();
      return;
  }
  if (!Actionable(status)) {
    std::fprintf(stderr, "handler %d answered %d: %s\n", op % 11, static_cast<int>(status.error_code()),
                 status.error_message().c_str());
    std::abort();
  }
}

}  // namespace
}  // namespace sparsepool

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sparsepool;
  static Daemon* daemon = Start();
  // Calls: [handler][caller][length, 2 bytes little-endian][request bytes].
  while (size >= 4) {
    const uint8_t op = data[0];
    const Tenant* who = daemon->callers[data[1] % daemon->callers.size()];
    const size_t length = std::min<size_t>(size - 4, data[2] | (data[3] << 8));
    Call(*daemon, op, who, data + 4, length);
    data += 4 + length;
    size -= 4 + length;
  }
  // The books balance: what the live sequences hold is what the pool counts as used,
  // and every sequence lives in a region that serves its tenant.
  const PoolStats stats = daemon->pool->Stats();
  uint64_t live_bytes = 0;
  for (const SequenceSummary& sequence : daemon->pool->List("")) {
    FUZZ_CHECK(daemon->pool->access().Serves(sequence.region, sequence.tenant));
    live_bytes += sequence.bytes;
  }
  FUZZ_CHECK(live_bytes == stats.used_bytes);
  FUZZ_CHECK(stats.capacity_bytes == stats.used_bytes + stats.reclaimable_bytes + stats.free_bytes);
  return 0;
}
