// A pool cluster across hosts: each daemon on a test host of its own, a network
// namespace joined to this one by a veth pair (iproute2), etcd here. Node "near" keeps
// its region in /dev/shm, which this host maps too (the stand-in for a CXL device on
// this host's switch); node "far" keeps its region on a tmpfs mounted only inside its
// own mount namespace, so this host reaches it over UCX (tcp across the veth), as a
// worker reaches a node off its CXL switch over RDMA. Needs root (namespaces, mounts);
// skips saying so otherwise.
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/entry_pattern.h"
#include "client/sparsepool_client.h"
#include "cluster/cluster_records.h"
#include "cluster/etcd_client.h"
#include "common/node_ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"
#include "tests/etcd_process.h"
#include "tests/pattern_sequences.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;
using testing::ChildProcess;
using testing::EtcdProcess;
using testing::RunCommand;


// One test host: a network namespace with a veth pair to this one, 10.S.N.2 there and
// 10.S.N.1 here, S picked by the test process so that runs side by side do not collide.
class TestHost {
 public:
  TestHost(int n, std::string tag) : n_(n), ns_(absl::StrCat("sp", tag, n)), here_(absl::StrCat("sp", tag, n, "h")) {}
  ~TestHost() {
    RunCommand({"/usr/sbin/ip", "link", "del", here_});
    RunCommand({"/usr/sbin/ip", "netns", "del", ns_});
  }
  absl::Status Create() {
    const std::string there = absl::StrCat(here_, "x");
    for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
             {"/usr/sbin/ip", "netns", "add", ns_},
             {"/usr/sbin/ip", "link", "add", here_, "type", "veth", "peer", "name", there},
             {"/usr/sbin/ip", "link", "set", there, "netns", ns_},
             {"/usr/sbin/ip", "addr", "add", absl::StrCat(gateway(), "/24"), "dev", here_},
             {"/usr/sbin/ip", "link", "set", here_, "up"},
             {"/usr/sbin/ip", "-n", ns_, "addr", "add", absl::StrCat(address(), "/24"), "dev", there},
             {"/usr/sbin/ip", "-n", ns_, "link", "set", there, "up"},
             {"/usr/sbin/ip", "-n", ns_, "link", "set", "lo", "up"}}) {
      testing::CommandResult r = RunCommand(argv);
      if (r.exit_code != 0) {
        return absl::FailedPreconditionError(absl::StrCat(argv[1], " ", argv[2], " failed: ", r.output));
      }
    }
    return absl::OkStatus();
  }
  // The link to this host down or up: a network partition and its healing.
  void SetLink(bool up) { RunCommand({"/usr/sbin/ip", "link", "set", here_, up ? "up" : "down"}); }
  const std::string& ns() const { return ns_; }
  std::string address() const { return absl::StrCat("10.", Subnet(), ".", n_, ".2"); }
  std::string gateway() const { return absl::StrCat("10.", Subnet(), ".", n_, ".1"); }
  static int Subnet() { return 64 + getpid() % 128; }

 private:
  const int n_;
  const std::string ns_;
  const std::string here_;
};

class ClusterAcrossHostsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: network namespaces and mounts (the test command runs as root)";
    setenv("UCX_TLS", "tcp", 1);
    const std::string tag = std::to_string(getpid() % 100000);
    etcd_ = std::make_unique<EtcdProcess>("netns", /*listen_all=*/true);
    absl::Status started = etcd_->Start();
    if (absl::IsFailedPrecondition(started)) GTEST_SKIP() << started;
    ASSERT_TRUE(started.ok()) << started;
    for (int n : {1, 2}) {
      hosts_.push_back(std::make_unique<TestHost>(n, tag));
      absl::Status created = hosts_.back()->Create();
      if (!created.ok()) GTEST_SKIP() << "cannot make test hosts here: " << created;
    }
    near_region_ = absl::StrCat("/dev/shm/sparsepool-netns-near-", getpid());
    ASSERT_TRUE(StartNode(0, "near", 1, absl::StrCat("shm:", near_region_, ":64MiB"), "").ok()) << Log(0);
    // The far node's region lives on a tmpfs only its own mount namespace sees.
    ASSERT_TRUE(StartNode(1, "far", 2, "shm:/mnt/sparsepool-far/region:128MiB",
                          "mkdir -p /mnt/sparsepool-far && mount -t tmpfs -o size=200m none /mnt/sparsepool-far && ")
                    .ok())
        << Log(1);
  }

  void TearDown() override {
    for (auto& daemon : daemons_) {
      if (daemon != nullptr && daemon->running()) daemon->Signal(SIGKILL);
    }
    daemons_.clear();
    hosts_.clear();
    if (!near_region_.empty()) unlink(near_region_.c_str());
  }

  // Starts sparsepoold inside test host `host` (its own network and mount namespace),
  // registered in etcd here through the host's gateway address.
  absl::Status StartNode(size_t host, const std::string& name, int node_id, const std::string& region,
                         const std::string& setup) {
    const TestHost& h = *hosts_[host];
    const std::string port_file = absl::StrCat(testing::TestTempDir(), "/netns-", name, "-", getpid(), ".port");
    unlink(port_file.c_str());
    const std::string etcd_port = etcd_->endpoint().substr(etcd_->endpoint().rfind(':') + 1);
    const std::string daemon =
        absl::StrCat(getenv("TEST_SRCDIR") ? absl::StrCat(getenv("TEST_SRCDIR"), "/sparsepool/") : "",
                     "service/sparsepoold");
    const std::string command = absl::StrCat(
        setup, "exec ", daemon, " --listen=", h.address(), ":7070 --region=", region, " --ucx=true --etcd=",
        h.gateway(), ":", etcd_port, " --node_name=", name, " --node_id=", node_id,
        " --etcd_ttl=2s --reuse_grace=0s --port_file=", port_file);
    if (daemons_.size() <= host) daemons_.resize(host + 1);
    daemons_[host] = std::make_unique<ChildProcess>();
    if (absl::Status s = daemons_[host]->Start({"/usr/sbin/ip", "netns", "exec", h.ns(), "/bin/sh", "-c", command});
        !s.ok()) {
      return s;
    }
    for (int i = 0; i < 200; ++i) {
      if (access(port_file.c_str(), R_OK) == 0) return absl::OkStatus();
      if (daemons_[host]->Poll().has_value()) return absl::InternalError("the daemon exited");
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError("the daemon did not start");
  }
  std::string Log(size_t host) { return host < daemons_.size() && daemons_[host] ? daemons_[host]->Output() : ""; }

  std::unique_ptr<Client> Connect() {
    ClientOptions options;
    options.etcd = etcd_->endpoint();
    options.rpc_timeout = absl::Seconds(3);
    auto client = Client::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  SequenceId CreateWritten(Client& client, uint64_t tokens) {
    auto id = testing::CreatePatterned(client, 5, tokens);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : 0;
  }

  absl::Status FetchAndCheck(Client& client, const std::vector<SequenceId>& batch, int32_t last) {
    return testing::FetchPatterned(client, 5, batch, {0, last / 2, last});
  }

  std::unique_ptr<EtcdProcess> etcd_;
  std::vector<std::unique_ptr<TestHost>> hosts_;
  std::vector<std::unique_ptr<ChildProcess>> daemons_;
  std::string near_region_;
};

TEST_F(ClusterAcrossHostsTest, NearNodesByLoadAndStoreFarNodesOverUcxAcrossTheVeth) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  // "far" has twice the room, but "near" maps here: placement takes "near" first.
  const SequenceId near = CreateWritten(*client, 300);
  EXPECT_EQ(NodeOfSequence(near), 1u);
  // Too big for "near": it goes to "far", written and read over UCX across the veth (its
  // region is nowhere in this host's file system, so there is no other way).
  ASSERT_NE(access("/mnt/sparsepool-far/region", F_OK), 0);
  const SequenceId far = CreateWritten(*client, 120000);
  EXPECT_EQ(NodeOfSequence(far), 2u);
  absl::Status fetched = FetchAndCheck(*client, {far}, 119999);
  EXPECT_TRUE(fetched.ok()) << fetched << "\n" << Log(1);
  // One batch across both: each node's rows by its own path.
  fetched = FetchAndCheck(*client, {near, far}, 299);
  EXPECT_TRUE(fetched.ok()) << fetched;
}

TEST_F(ClusterAcrossHostsTest, APartitionedNodeFailsOnlyItsSequencesAndHeals) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  const SequenceId near = CreateWritten(*client, 200);
  const SequenceId far = CreateWritten(*client, 120000);
  ASSERT_EQ(NodeOfSequence(far), 2u);
  hosts_[1]->SetLink(false);  // "far" cut off
  const absl::Time begin = absl::Now();
  auto info = client->Info(far);
  EXPECT_TRUE(absl::IsUnavailable(info.status())) << info.status();
  EXPECT_THAT(std::string(info.status().message()), HasSubstr("node \"far\""));
  EXPECT_LT(absl::Now() - begin, absl::Seconds(8));
  absl::Status near_fetch = FetchAndCheck(*client, {near}, 199);
  EXPECT_TRUE(near_fetch.ok()) << near_fetch;
  hosts_[1]->SetLink(true);  // healed within its lease: it never left the cluster
  absl::Status healed;
  for (int i = 0; i < 20; ++i) {
    healed = FetchAndCheck(*client, {far}, 119999);
    if (healed.ok()) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  EXPECT_TRUE(healed.ok()) << healed;
}

}  // namespace
}  // namespace sparsepool
