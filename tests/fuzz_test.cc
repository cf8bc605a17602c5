// Randomised fuzzing of the parsers and request handlers, bounded and seeded so that
// a failure reproduces. Each target must never crash and must answer malformed input
// with an error, never with a result that breaks an invariant.
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/layout_proto.h"
#include "transport/rdma/verbs_endpoint_proto.h"
#include "gtest/gtest.h"
#include "absl/flags/reflection.h"
#include "service/daemon_config.h"
#include "service/daemon_flags.h"
#include "service/metrics_http.h"
#include "service/pool.h"
#include "service/tenants.h"
#include "tests/child_process.h"
#include "tests/fake_clock.h"
#include "transport/cxl/region_spec.h"
#include "transport/data_plane.h"

namespace sparsepool {
namespace {

std::string Mutate(std::string text, std::mt19937_64& rng) {
  const char alphabet[] = "=#:\n \t0123456789abcdefgshmnuKMGiB/-.,\0\xff";
  const int edits = 1 + rng() % 6;
  for (int e = 0; e < edits; ++e) {
    const size_t at = text.empty() ? 0 : rng() % (text.size() + 1);
    const char c = alphabet[rng() % (sizeof(alphabet) - 1)];
    switch (rng() % 3) {
      case 0:
        text.insert(text.begin() + at, c);
        break;
      case 1:
        if (at < text.size()) text.erase(at, 1 + rng() % 4);
        break;
      default:
        if (at < text.size()) text[at] = c;
    }
  }
  return text;
}

TEST(FuzzTest, ConfigTextAndRegionSpecs) {
  const std::string seed_config =
      "listen = 127.0.0.1:7070\nregion = shm:a:1GiB\nregion = numa:0:b:2GiB\n"
      "page_tokens = 64\nlease_timeout = 30s\nrecord_slots = 100\nport_file = /tmp/p\n"
      "reuse_grace = 1s\nmetrics_listen = 0.0.0.0:9464\n";
  const std::vector<std::string> seed_specs = {"shm:a:1GiB", "numa:1:x:4G", "devdax:/dev/dax0.0:2G",
                                               "hugetlbfs:/mnt/h/p:1G"};
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    absl::FlagSaver restore;
    const absl::Status s = ApplyConfigText(Mutate(seed_config, rng), "fuzz");
    ASSERT_TRUE(s.ok() || absl::IsInvalidArgument(s)) << s;
    if (s.ok()) {
      absl::StatusOr<DaemonConfig> config = DaemonConfigFromFlags();
      ASSERT_TRUE(config.ok() || absl::IsInvalidArgument(config.status())) << config.status();
      if (config.ok()) {
        ASSERT_FALSE(config->regions.empty());
        for (const RegionSpec& spec : config->regions) ASSERT_FALSE(spec.path.empty());
      }
    }
    auto spec = ParseRegionSpec(Mutate(seed_specs[i % seed_specs.size()], rng));
    ASSERT_TRUE(spec.ok() || absl::IsInvalidArgument(spec.status())) << spec.status();
    if (spec.ok() && spec->kind != RegionKind::kDevdax) {
      ASSERT_GT(spec->size_bytes, 0u);
    }
  }
}

// The tenants file: an error or a directory whose every entry has a name, and whose
// tokens authenticate as themselves only.
TEST(FuzzTest, TenantsText) {
  const std::string seed = "tenant acme token_sha256=" + TokenHashHex("a") +
                           " max_bytes=1GiB max_sequences=10\n# c\noperator ops token_sha256=" +
                           TokenHashHex("o") + "\n";
  std::mt19937_64 rng(23);
  for (int i = 0; i < 20000; ++i) {
    auto directory = TenantDirectory::Parse(Mutate(seed, rng), "fuzz");
    if (!directory.ok()) {
      ASSERT_TRUE(absl::IsInvalidArgument(directory.status())) << directory.status();
      continue;
    }
    for (const Tenant& entry : directory->entries()) {
      ASSERT_FALSE(entry.name.empty());
      ASSERT_LE(entry.name.size(), kMaxNameBytes);
    }
    ASSERT_FALSE(directory->Authenticate("").ok());
    if (auto a = directory->Authenticate("a"); a.ok()) ASSERT_EQ((*a)->token_sha256, HashToken("a"));
  }
}

// A client must never accept a layout that would make it read outside a region.
// What a scraper (or anyone who can reach the metrics port) sends.
TEST(FuzzTest, MetricsRequestHeads) {
  const std::vector<std::string> seeds = {
      "GET /metrics HTTP/1.1\r\nHost: node:9464\r\nAccept: */*\r\n\r\n",
      "GET /metrics?name[]=x HTTP/1.0\r\n\r\n", "POST / HTTP/1.1\r\n\r\n"};
  std::mt19937_64 rng(17);
  for (int i = 0; i < 20000; ++i) {
    std::string head = seeds[i % seeds.size()];
    const int edits = 1 + rng() % 6;
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % (head.size() + 1);
      const char c = "GET /mtrics?HTP1.\r\n \0\xff"[rng() % 20];
      if (rng() % 2 == 0) {
        head.insert(head.begin() + at, c);
      } else if (at < head.size()) {
        head.erase(at, 1 + rng() % 3);
      }
    }
    auto path = ParseGetRequest(head);
    ASSERT_TRUE(path.ok() || absl::IsInvalidArgument(path.status())) << path.status();
    if (path.ok()) {
      ASSERT_FALSE(path->empty());
      ASSERT_EQ((*path)[0], '/');
      ASSERT_EQ(path->find('?'), std::string::npos);
      ASSERT_EQ(path->find(' '), std::string::npos);
    }
  }
}

TEST(FuzzTest, LayoutMessagesFromTheWire) {
  v1::SequenceLayout seed;
  seed.set_sequence_id(3);
  seed.set_layers(2);
  seed.set_entry_bytes(656);
  seed.set_entry_stride(656);
  seed.set_page_tokens(64);
  seed.set_tokens(100);
  seed.set_pages_per_layer(2);
  seed.mutable_region()->set_size_bytes(1 << 20);
  seed.mutable_region()->set_uuid(std::string(16, 'u'));
  for (uint64_t offset : {4096, 4096 + 41984, 200000, 300000}) seed.add_page_offsets(offset);
  const std::string wire = seed.SerializeAsString();
  std::mt19937_64 rng(12);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = wire;
    for (int e = 0; e < 1 + static_cast<int>(rng() % 4); ++e) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    v1::SequenceLayout message;
    if (!message.ParseFromString(bytes)) continue;
    auto layout = LayoutFromProto(message);
    if (!layout.ok()) continue;
    ++accepted;
    for (uint32_t layer = 0; layer < layout->layers; ++layer) {
      for (uint64_t token = 0; token < layout->tokens; token += 7) {
        ASSERT_LE(layout->EntryOffset(layer, token) + layout->entry_bytes, layout->region.size_bytes);
      }
    }
  }
  EXPECT_GT(accepted, 0);
}

// ConnectVerbs endpoints from the wire, corrupted: whatever parses is either refused or
// holds only values a queue pair can take.
TEST(FuzzTest, VerbsEndpointsFromTheWire) {
  v1::VerbsEndpoint seed;
  seed.set_qp_number(0x1234);
  seed.set_packet_sequence(0x42);
  seed.set_gid(std::string(16, 'g'));
  seed.set_lid(3);
  seed.set_mtu(4096);
  const std::string wire = seed.SerializeAsString();
  std::mt19937_64 rng(13);
  int accepted = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = wire;
    for (int e = 0; e < 1 + static_cast<int>(rng() % 3); ++e) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    v1::VerbsEndpoint message;
    if (!message.ParseFromString(bytes)) continue;
    auto peer = EndpointFromProto(message);
    if (!peer.ok()) {
      ++refused;
      continue;
    }
    ++accepted;
    ASSERT_GT(peer->endpoint.qp_number, 0u);
    ASSERT_LT(peer->endpoint.qp_number, 1u << 24);
    ASSERT_LT(peer->endpoint.packet_sequence, 1u << 24);
    ASSERT_NE(MtuFromBytes(peer->mtu_bytes), 0);
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
}

// Random control-plane requests, valid and not, against a pool over two regions: live
// sequences never share memory, every page stays in its region, the stats add up, and
// a restart recovers exactly the live set.
TEST(FuzzTest, PoolRequests) {
  std::vector<RegionSpec> specs(2);
  for (int r = 0; r < 2; ++r) {
    specs[r].path = absl::StrCat(testing::TestTempDir(), "/fuzz-pool-", r);
    specs[r].size_bytes = 8 << 20;
    unlink(specs[r].path.c_str());
  }
  testing::FakeClock clock;
  auto open_pool = [&] {
    std::vector<std::unique_ptr<RegionStore>> regions;
    for (const auto& spec : specs) {
      RecoveryReport report;
      regions.push_back(*RegionStore::Open(static_cast<uint32_t>(regions.size()),
                                           *MappedRegion::OpenOrCreate(spec), 32, 0, &report));
    }
    PoolOptions options;
    options.lease_timeout = absl::Seconds(5);
    return *Pool::Open(std::move(regions), options, &clock);
  };
  auto pool = open_pool();
  std::mt19937_64 rng(13);
  std::vector<SequenceId> known = {0, 12345};
  const std::vector<std::string> clients = {"", "a", "b", std::string(70, 'z')};

  using LiveSet = std::map<SequenceId, SequenceLayout>;
  auto check_invariants = [&](Pool& p, LiveSet& live) {
    live.clear();
    std::set<std::pair<uint32_t, uint64_t>> pages;
    for (const SequenceSummary& s : p.List("")) {
      auto layout = p.GetLayout("", s.id);
      ASSERT_TRUE(layout.ok()) << layout.status();
      ASSERT_TRUE(ValidateLayout(*layout).ok());
      for (uint64_t offset : layout->page_offsets) {
        ASSERT_TRUE(pages.insert({layout->region.index, offset}).second) << "page shared";
      }
      live[s.id] = *layout;
    }
    const PoolStats stats = p.Stats();
    ASSERT_EQ(stats.capacity_bytes, stats.used_bytes + stats.reclaimable_bytes + stats.free_bytes);
    ASSERT_EQ(stats.live_sequences, live.size());
  };
  LiveSet before, after;

  for (int step = 0; step < 3000; ++step) {
    const std::string& client = clients[rng() % clients.size()];
    const SequenceId id = known[rng() % known.size()];
    switch (rng() % 7) {
      case 0:
      case 1: {
        CreateParams params;
        params.client_id = client;
        params.layers = rng() % 8 == 0 ? static_cast<uint32_t>(rng()) : 1 + rng() % 8;
        params.entry_bytes = rng() % 8 == 0 ? static_cast<uint32_t>(rng()) : 1 + rng() % 2000;
        params.entry_alignment = static_cast<uint32_t>(rng() % 3 == 0 ? rng() % 200 : 0);
        params.page_tokens = static_cast<uint32_t>(rng() % 4 == 0 ? rng() % 200 : 0);
        params.tokens = rng() % 16 == 0 ? rng() : rng() % 3000;
        auto layout = pool->Create(params);
        if (layout.ok()) {
          known.push_back(layout->sequence_id);
        } else {
          ASSERT_TRUE(absl::IsInvalidArgument(layout.status()) ||
                      absl::IsResourceExhausted(layout.status()))
              << layout.status();
        }
        break;
      }
      case 2: {
        auto layout = pool->Extend(client, id, rng() % 6000);
        ASSERT_TRUE(layout.ok() || absl::IsInvalidArgument(layout.status()) ||
                    absl::IsNotFound(layout.status()) || absl::IsResourceExhausted(layout.status()))
            << layout.status();
        break;
      }
      case 3: {
        absl::Status s = pool->Release(client, id);
        ASSERT_TRUE(s.ok() || absl::IsNotFound(s) || (absl::IsInvalidArgument(s) && client.size() > 63)) << s;
        break;
      }
      case 4:
        (void)pool->KeepAlive(client);
        break;
      case 5: {
        auto layout = pool->Adopt(client, id);
        ASSERT_TRUE(layout.ok() || absl::IsInvalidArgument(layout.status()) || absl::IsNotFound(layout.status()))
            << layout.status();
        if (layout.ok()) {
          const auto owned = pool->List("");
          const auto it = std::find_if(owned.begin(), owned.end(), [&](const SequenceSummary& s) { return s.id == id; });
          ASSERT_TRUE(it != owned.end());
          ASSERT_EQ(it->owner, client) << "adopted, so owned by the adopter";
        }
        break;
      }
      default:
        clock.Advance(absl::Seconds(rng() % 4));
        pool->ExpireLeases();
    }
    if (step % 100 == 0) {
      check_invariants(*pool, before);
      if (HasFatalFailure()) return;
    }
  }
  check_invariants(*pool, before);
  pool.reset();
  pool = open_pool();
  check_invariants(*pool, after);
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [id, layout] : before) {
    ASSERT_TRUE(after.count(id));
    EXPECT_EQ(after.at(id).tokens, layout.tokens);
    EXPECT_EQ(after.at(id).page_offsets, layout.page_offsets);
    EXPECT_EQ(after.at(id).record_offset, layout.record_offset);
  }
  pool.reset();
  for (const auto& spec : specs) unlink(spec.path.c_str());
}

}  // namespace
}  // namespace sparsepool
