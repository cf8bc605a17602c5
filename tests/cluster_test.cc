// A pool cluster of real processes: etcd (Debian's etcd-server) and three sparsepoold
// nodes registered in it, clients given only etcd's endpoint. Registration and refusals,
// placement by the documented policy, routing by id, batches across nodes, hand-off to
// another client, a node killed and restarted, etcd killed and restarted.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/entry_pattern.h"
#include "client/sparsepool_client.h"
#include "cluster/cluster_records.h"
#include "cluster/etcd_client.h"
#include "common/node_ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon_process.h"
#include "tests/etcd_process.h"
#include "tests/pattern_sequences.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;
using testing::DaemonOptions;
using testing::DaemonProcess;
using testing::EtcdProcess;

constexpr uint32_t kEntry = 656;
constexpr char kPrefix[] = "/sparsepool-test";

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_ = std::make_unique<EtcdProcess>(::testing::UnitTest::GetInstance()->current_test_info()->name());
    absl::Status started = etcd_->Start();
    if (absl::IsFailedPrecondition(started)) GTEST_SKIP() << started;
    ASSERT_TRUE(started.ok()) << started;
    // Node n2 has the most room, then n3, then n1: placement goes to n2 first.
    for (auto [id, size] : {std::pair{1, "64MiB"}, std::pair{2, "160MiB"}, std::pair{3, "96MiB"}}) {
      nodes_.push_back(StartNode(id, size));
      ASSERT_TRUE(nodes_.back()->Start().ok()) << nodes_.back()->Log();
    }
  }

  std::unique_ptr<DaemonProcess> StartNode(int id, const std::string& size, std::vector<std::string> extra = {}) {
    DaemonOptions options;
    options.region_size = size;
    options.extra_args = {absl::StrCat("--etcd=", etcd_->endpoint()), absl::StrCat("--etcd_prefix=", kPrefix),
                          absl::StrCat("--node_name=n", id), absl::StrCat("--node_id=", id), "--etcd_ttl=2s",
                          "--reuse_grace=0s"};
    options.extra_args.insert(options.extra_args.end(), extra.begin(), extra.end());
    return std::make_unique<DaemonProcess>(absl::StrCat("cluster-n", id), options);
  }

  std::unique_ptr<Client> Connect(const std::string& client_id = "", uint64_t fetch_bytes_per_second = 0) {
    ClientOptions options;
    options.fetch_bytes_per_second = fetch_bytes_per_second;
    options.etcd = etcd_->endpoint();
    options.etcd_prefix = kPrefix;
    options.client_id = client_id;
    options.rpc_timeout = absl::Seconds(3);
    auto client = Client::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // A sequence of `tokens` tokens on one layer, written with the test pattern.
  SequenceId CreateWritten(Client& client, uint64_t tokens) {
    auto id = testing::CreatePatterned(client, 9, tokens);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : 0;
  }

  // Two written sequences on two nodes: the first on n2 (the most room), then a filler
  // of 140 MiB more on n2, which leaves it less room than n3 (96 MiB), so the second
  // goes to n3. Filler 0 when it could not be made.
  struct TwoNodes {
    SequenceId first = 0, filler = 0, second = 0;
  };
  TwoNodes PlaceOnTwoNodes(Client& client) {
    TwoNodes placed;
    placed.first = CreateWritten(client, 300);
    EXPECT_EQ(NodeOfSequence(placed.first), 2u);
    SequenceSpec big;
    big.layers = 10;
    big.entry_bytes = kEntry;
    big.tokens = 22000;
    auto filler = client.CreateSequence(big);
    EXPECT_TRUE(filler.ok()) << filler.status();
    if (!filler.ok()) return placed;
    placed.filler = *filler;
    EXPECT_EQ(NodeOfSequence(placed.filler), 2u);
    absl::SleepFor(absl::Seconds(1));  // the nodes refresh their free bytes every TTL/3
    placed.second = CreateWritten(client, 200);
    EXPECT_EQ(NodeOfSequence(placed.second), 3u);
    return placed;
  }

  // Fetches tokens 0 and `last` of every sequence in one batch and checks the bytes.
  absl::Status FetchAndCheck(Client& client, const std::vector<SequenceId>& batch, int32_t last) {
    return testing::FetchPatterned(client, 9, batch, {0, last});
  }

  std::vector<cluster::NodeRecord> Nodes() {
    auto etcd = cluster::EtcdClient::Connect(etcd_->endpoint(), absl::Seconds(2));
    EXPECT_TRUE(etcd.ok()) << etcd.status();
    if (!etcd.ok()) return {};
    auto nodes = cluster::ReadNodes(**etcd, kPrefix);
    EXPECT_TRUE(nodes.ok()) << nodes.status();
    return nodes.ok() ? *nodes : std::vector<cluster::NodeRecord>{};
  }

  std::unique_ptr<EtcdProcess> etcd_;
  std::vector<std::unique_ptr<DaemonProcess>> nodes_;
};

TEST_F(ClusterTest, NodesRegisterWithTheirRegionsAndLeaveWhenStopped) {
  std::vector<cluster::NodeRecord> nodes = Nodes();
  ASSERT_EQ(nodes.size(), 3u);
  for (const cluster::NodeRecord& node : nodes) {
    SCOPED_TRACE(node.name());
    EXPECT_EQ(node.name(), absl::StrCat("n", node.node_id()));
    EXPECT_EQ(node.address(), nodes_[node.node_id() - 1]->address());
    ASSERT_EQ(node.regions_size(), 1);
    EXPECT_EQ(node.regions(0).path(), nodes_[node.node_id() - 1]->region_path());
    EXPECT_EQ(node.regions(0).kind(), "shm");
    EXPECT_GT(node.regions(0).capacity_bytes(), 0u);
    EXPECT_EQ(node.regions(0).free_bytes(), node.regions(0).capacity_bytes());
    EXPECT_THAT(node.transports(), ::testing::ElementsAre("cxl"));
    EXPECT_NE(node.incarnation(), 0u);
  }
  // A clean stop revokes the lease: the node is gone at once, not after the TTL.
  EXPECT_EQ(nodes_[0]->Stop(), 0);
  EXPECT_EQ(Nodes().size(), 2u);
}

TEST_F(ClusterTest, ClaimsTakenByAnotherNodeAreRefused) {
  // n1's region, named again by a node "n9": two daemons would manage the same memory.
  auto thief = StartNode(9, "64MiB", {absl::StrCat("--region=shm:", nodes_[0]->region_path(), ":64MiB")});
  EXPECT_FALSE(thief->Start().ok());
  EXPECT_THAT(thief->Log(), HasSubstr("is claimed in etcd by node \"n1\": two nodes cannot manage it"));
  // n1's node id under another name.
  DaemonOptions same_id;
  same_id.extra_args = {absl::StrCat("--etcd=", etcd_->endpoint()), absl::StrCat("--etcd_prefix=", kPrefix),
                        "--node_name=n8", "--node_id=1"};
  DaemonProcess duplicate_id("cluster-dup-id", same_id);
  EXPECT_FALSE(duplicate_id.Start().ok());
  EXPECT_THAT(duplicate_id.Log(), HasSubstr("node id 1 is claimed in etcd by node \"n1\""));
  // n2's name while n2 is alive and answering.
  DaemonOptions same_name = same_id;
  same_name.extra_args[2] = "--node_name=n2";
  same_name.extra_args[3] = "--node_id=7";
  DaemonProcess duplicate_name("cluster-dup-name", same_name);
  EXPECT_FALSE(duplicate_name.Start().ok());
  EXPECT_THAT(duplicate_name.Log(), HasSubstr("node \"n2\" is registered in etcd by a live daemon"));
  EXPECT_EQ(Nodes().size(), 3u) << "no refused daemon left a claim behind";
}

TEST_F(ClusterTest, SequencesArePlacedByFreeBytesAndRoutedByTheirIds) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  // Every node maps here (one host): the most free bytes wins, and the figures move.
  const TwoNodes placed = PlaceOnTwoNodes(*client);
  const SequenceId first = placed.first, second = placed.second;
  ASSERT_NE(placed.filler, 0u);
  // One batch across two nodes: each node's rows go to it, back in the batch's order.
  EXPECT_TRUE(FetchAndCheck(*client, {first, second}, 199).ok());
  // The client's counters are its node connections' summed: two calls, one per node.
  const ClientMetrics metrics = client->Metrics();
  ASSERT_EQ(metrics.transports.count("cxl"), 1u);
  EXPECT_EQ(metrics.transports.at("cxl").fetch_calls, 2u);
  EXPECT_EQ(metrics.transports.at("cxl").entries_fetched, 4u);
  EXPECT_EQ(metrics.transports.at("cxl").bytes_fetched, 4u * testing::kPatternEntryBytes);
  EXPECT_GT(metrics.transports.at("cxl").bytes_written, 0u);
  ASSERT_EQ(metrics.fetch_seconds_by_layer.size(), 1u);
  EXPECT_EQ(metrics.fetch_seconds_by_layer[0].count, 2u);
  // Growth, info and release go to the owning node.
  EXPECT_TRUE(client->ExtendSequence(second, 400).ok());
  auto info = client->Info(second);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->tokens, 400u);
  EXPECT_TRUE(client->ReleaseSequence(placed.filler).ok());
  // A sequence too big for any node: refused, saying so.
  SequenceSpec big;
  big.layers = 10;
  big.entry_bytes = kEntry;
  big.tokens = 1 << 20;
  auto refused = client->CreateSequence(big);
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("no node of the cluster"));
  // Creates read the membership again; connections kept across it are counted once.
  EXPECT_EQ(client->Metrics().transports.at("cxl").fetch_calls, 2u);
  EXPECT_EQ(client->Metrics().fetch_seconds_by_layer[0].count, 2u);
}

// A cluster client's fetch rate holds over all its nodes together, not per node: eight
// calls, four to each of two nodes, take at least seven calls' pay at the one rate
// (per-node pacers would let each node's run at the whole rate, in half the time).
TEST_F(ClusterTest, AClientsFetchRateHoldsOverAllItsNodes) {
  constexpr uint64_t kCallBytes = 2 * testing::kPatternEntryBytes;  // one row: tokens 0 and `last`
  auto client = Connect("", /*fetch_bytes_per_second=*/kCallBytes * 5);
  ASSERT_NE(client, nullptr);
  const TwoNodes placed = PlaceOnTwoNodes(*client);
  ASSERT_NE(placed.filler, 0u);
  const absl::Time start = absl::Now();
  for (int round = 0; round < 4; ++round) {
    ASSERT_TRUE(FetchAndCheck(*client, {placed.first, placed.second}, 199).ok());
  }
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(7 * 200 - 10));
  // A fetch outside the client (a GPU gather's) books on the same pacer: it waits for
  // the last call's pay, and its wait is counted.
  const double paced_before = client->Metrics().fetch_paced_seconds;
  EXPECT_GT(client->PaceFetch(kCallBytes), absl::ZeroDuration());
  const ClientMetrics metrics = client->Metrics();
  EXPECT_GT(metrics.fetch_paced_seconds, paced_before);
  EXPECT_EQ(metrics.transports.at("cxl").fetch_calls, 8u);
  EXPECT_GT(metrics.fetch_paced_seconds, 1.0);
  EXPECT_TRUE(client->ReleaseSequence(placed.filler).ok());
}

// The async calls answer later, on another thread, with what the blocking ones would:
// a scheduler admitting many requests at once spreads them over the nodes.
TEST_F(ClusterTest, AsyncCreatesArePlacedAndReleasedLikeBlockingOnes) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  SequenceSpec spec;
  spec.layers = 10;
  spec.entry_bytes = kEntry;
  spec.tokens = 4096;  // 26 MiB each: six of them cannot all fit on one node by free bytes
  absl::Mutex mu;
  std::vector<absl::StatusOr<SequenceId>> created;
  for (int i = 0; i < 6; ++i) {
    client->CreateSequenceAsync(spec, [&](absl::StatusOr<SequenceId> id) {
      absl::MutexLock lock(&mu);
      created.push_back(id);
    });
  }
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(+[](std::vector<absl::StatusOr<SequenceId>>* c) { return c->size() == 6; }, &created),
                                    absl::Seconds(20)));
  }
  std::set<uint32_t> nodes;
  for (const auto& id : created) {
    ASSERT_TRUE(id.ok()) << id.status();
    nodes.insert(NodeOfSequence(*id));
  }
  EXPECT_GE(nodes.size(), 2u) << "a burst spreads over the nodes";
  int released = 0;
  for (const auto& id : created) {
    client->ReleaseSequenceAsync(*id, [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      absl::MutexLock lock(&mu);
      ++released;
    });
  }
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(+[](int* n) { return *n == 6; }, &released), absl::Seconds(20)));
}

TEST_F(ClusterTest, ADecodeWorkerAdoptsAPrefillWorkersSequenceByItsId) {
  auto prefill = Connect("prefill-worker");
  auto decode = Connect("decode-worker");
  ASSERT_NE(prefill, nullptr);
  ASSERT_NE(decode, nullptr);
  const SequenceId id = CreateWritten(*prefill, 128);
  ASSERT_TRUE(decode->AdoptSequence(id).ok());
  prefill.reset();
  EXPECT_TRUE(FetchAndCheck(*decode, {id}, 127).ok());
  EXPECT_TRUE(decode->ReleaseSequence(id).ok());
}

TEST_F(ClusterTest, ADeadNodeFailsOnlyItsOwnSequencesAndServesThemAgainWhenBack) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  const SequenceId on_n2 = CreateWritten(*client, 100);
  ASSERT_EQ(NodeOfSequence(on_n2), 2u);
  nodes_[1]->Kill();
  // Calls that need the node fail fast, naming it.
  const absl::Time begin = absl::Now();
  auto failed = client->Info(on_n2);
  EXPECT_TRUE(absl::IsUnavailable(failed.status())) << failed.status();
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("node \"n2\""));
  EXPECT_LT(absl::Now() - begin, absl::Seconds(5)) << "a dead node fails its calls fast";
  // Its memory still maps here, unchanged, and nobody reuses it while the node is down:
  // reads by load and store of a layout already known go on.
  EXPECT_TRUE(FetchAndCheck(*client, {on_n2}, 99).ok());
  // The others serve on; new sequences avoid the dead node once its lease is gone.
  absl::SleepFor(absl::Seconds(3));
  const SequenceId elsewhere = CreateWritten(*client, 100);
  EXPECT_NE(NodeOfSequence(elsewhere), 2u);
  EXPECT_TRUE(FetchAndCheck(*client, {elsewhere}, 99).ok());
  // Back (on another port): the client finds it again at its new address.
  ASSERT_TRUE(nodes_[1]->Start().ok()) << nodes_[1]->Log();
  auto info = client->Info(on_n2);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->tokens, 100u);
  EXPECT_TRUE(client->ExtendSequence(on_n2, 200).ok());
  absl::Status back = FetchAndCheck(*client, {on_n2, elsewhere}, 99);
  EXPECT_TRUE(back.ok()) << back;
}

TEST_F(ClusterTest, SparsepoolctlShowsEveryNodeItsHealthAndFigures) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  CreateWritten(*client, 64);
  nodes_[2]->Kill();  // n3: still registered until its lease runs out, but silent
  const std::vector<std::string> argv = {"tools/sparsepoolctl", absl::StrCat("--etcd=", etcd_->endpoint()),
                                         absl::StrCat("--etcd_prefix=", kPrefix), "--timeout=1s", "cluster"};
  testing::CommandResult view = testing::RunCommand(argv);
  EXPECT_EQ(view.exit_code, 0) << view.output;
  EXPECT_THAT(view.output, HasSubstr(absl::StrCat("n1 ", "")));
  EXPECT_THAT(view.output, ::testing::ContainsRegex("n2 +2 +127\\.0\\.0\\.1:[0-9]+ +serving, up"));
  EXPECT_THAT(view.output, ::testing::ContainsRegex("n3 +3 .*UNREACHABLE"));
  EXPECT_THAT(view.output, HasSubstr("3 node(s) registered at etcd"));
  EXPECT_THAT(view.output, HasSubstr("2 serving"));
  EXPECT_THAT(view.output, HasSubstr("1 live sequences"));
  // etcd gone: said plainly, exit 1.
  etcd_->Kill();
  testing::CommandResult down = testing::RunCommand(argv);
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.output, HasSubstr("is etcd running and reachable?"));
}

TEST_F(ClusterTest, WithEtcdDownSequencesWorkAndNewPlacementsFailClearly) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  const SequenceId id = CreateWritten(*client, 64);
  etcd_->Kill();
  EXPECT_TRUE(FetchAndCheck(*client, {id}, 63).ok());
  EXPECT_TRUE(client->ExtendSequence(id, 128).ok());
  SequenceSpec spec;
  spec.layers = 1;
  spec.entry_bytes = kEntry;
  spec.tokens = 64;
  auto refused = client->CreateSequence(spec);
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("cannot place a new sequence: etcd at"));
  // etcd back on its data: the nodes' registrations are there again, placement works.
  ASSERT_TRUE(etcd_->Start().ok());
  absl::Status placed;
  for (int i = 0; i < 50; ++i) {
    placed = client->CreateSequence(spec).status();
    if (placed.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(placed.ok()) << placed;
}

}  // namespace
}  // namespace sparsepool
