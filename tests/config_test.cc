#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/units.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/flags/reflection.h"
#include "service/daemon_config.h"
#include "service/daemon_flags.h"
#include "tests/child_process.h"
#include "transport/cxl/region_spec.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

TEST(UnitsTest, ParsesBinarySizes) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("64KiB"), 65536u);
  EXPECT_EQ(*ParseByteSize("4GiB"), uint64_t{4} << 30);
  EXPECT_EQ(*ParseByteSize(" 2g "), uint64_t{2} << 30);
  EXPECT_EQ(*ParseByteSize("1TB"), uint64_t{1} << 40);
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("GiB").ok());
  EXPECT_THAT(std::string(ParseByteSize("4 parsecs").status().message()), HasSubstr("unknown unit"));
  EXPECT_FALSE(ParseByteSize("99999999999999999999").ok());
  EXPECT_FALSE(ParseByteSize("99999999999TiB").ok());
  EXPECT_EQ(FormatBytes(3 << 20), "3.00 MiB");
  EXPECT_EQ(FormatBytes(12), "12 B");
}

TEST(RegionSpecTest, ParsesEveryKind) {
  auto shm = ParseRegionSpec("shm:pool0:4GiB");
  ASSERT_TRUE(shm.ok());
  EXPECT_EQ(shm->kind, RegionKind::kShm);
  EXPECT_EQ(shm->path, "/dev/shm/pool0");
  EXPECT_EQ(shm->size_bytes, uint64_t{4} << 30);
  EXPECT_EQ(ParseRegionSpec("shm:/tmp/x:1MiB")->path, "/tmp/x");
  auto huge = ParseRegionSpec("hugetlbfs:/dev/hugepages/pool:2GiB");
  ASSERT_TRUE(huge.ok());
  EXPECT_EQ(huge->kind, RegionKind::kHugetlbfs);
  auto dax = ParseRegionSpec("devdax:/dev/dax0.0");
  ASSERT_TRUE(dax.ok());
  EXPECT_EQ(dax->size_bytes, 0u);
  auto numa = ParseRegionSpec("numa:2:cxl-pool:16GiB");
  ASSERT_TRUE(numa.ok());
  EXPECT_EQ(numa->numa_node, 2);
  EXPECT_EQ(numa->path, "/dev/shm/cxl-pool");
}

TEST(RegionSpecTest, RejectsMalformedSpecsWithTheReason) {
  EXPECT_THAT(std::string(ParseRegionSpec("tape:x:1G").status().message()), HasSubstr("unknown region kind \"tape\""));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x").status().message()), HasSubstr("shm:NAME:SIZE"));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:a/b:1G").status().message()), HasSubstr("plain name"));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x:0").status().message()), HasSubstr("size 0"));
  EXPECT_FALSE(ParseRegionSpec("hugetlbfs:relative:1G").ok());
  EXPECT_FALSE(ParseRegionSpec("devdax:/dev/sda").ok());
  EXPECT_THAT(std::string(ParseRegionSpec("numa:-1:x:1G").status().message()), HasSubstr("NUMA node"));
  EXPECT_FALSE(ParseRegionSpec("").ok());
}

TEST(RegionSpecTest, ParsesAccessOptions) {
  auto dedicated = ParseRegionSpec("shm:acme-kv:4GiB,tenant=acme,tenant=initech,owner=0,group=root");
  ASSERT_TRUE(dedicated.ok()) << dedicated.status();
  EXPECT_EQ(dedicated->path, "/dev/shm/acme-kv");
  EXPECT_EQ(dedicated->tenants, (std::vector<std::string>{"acme", "initech"}));
  EXPECT_EQ(dedicated->owner_uid, std::optional<uint32_t>(0));
  EXPECT_EQ(dedicated->group_gid, std::optional<uint32_t>(0));
  EXPECT_EQ(dedicated->mode, std::optional<uint32_t>(0660)) << "a dedicated region with a group: owner and group";
  EXPECT_EQ(ParseRegionSpec("shm:x:1GiB,tenant=acme")->mode, std::optional<uint32_t>(0600));
  EXPECT_EQ(ParseRegionSpec("shm:x:1GiB,mode=0640")->mode, std::optional<uint32_t>(0640));
  auto shared = ParseRegionSpec("shm:x:1GiB");
  EXPECT_TRUE(shared->tenants.empty());
  EXPECT_FALSE(shared->mode.has_value()) << "a shared region's file is left as it is";
  auto devdax = ParseRegionSpec("devdax:/dev/dax0.0,tenant=acme,owner=12");
  ASSERT_TRUE(devdax.ok());
  EXPECT_EQ(devdax->path, "/dev/dax0.0");
}

TEST(RegionSpecTest, RejectsBadAccessOptions) {
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x:1G,mode=0999").status().message()), HasSubstr("octal"));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x:1G,mode=01777").status().message()), HasSubstr("at most 0777"));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x:1G,colour=red").status().message()),
              HasSubstr("unknown option \"colour\""));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x:1G,tenant").status().message()), HasSubstr("KEY=VALUE"));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x:1G,tenant=").status().message()), HasSubstr("KEY=VALUE"));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x:1G,owner=no-such-user-here").status().message()),
              HasSubstr("no user \"no-such-user-here\""));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x:1G,group=no-such-group-here").status().message()),
              HasSubstr("no group"));
  EXPECT_THAT(std::string(ParseRegionSpec("shm:x:1G,owner=4294967295").status().message()), HasSubstr("no user id"));
}

// The daemon's command line as sparsepoold reads it (service/daemon_flags.h). Each test
// starts from the flags' defaults and leaves them so.
class DaemonConfigTest : public ::testing::Test {
 protected:
  static absl::StatusOr<DaemonConfig> Parse(std::vector<std::string> args) {
    absl::FlagSaver restore_after_parse;
    args.insert(args.begin(), "sparsepoold");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    return ParseDaemonCommandLine(static_cast<int>(argv.size()), argv.data());
  }
  static absl::Status ApplyText(absl::string_view text) {
    absl::FlagSaver restore;
    return ApplyConfigText(text, "node.conf");
  }

 private:
  absl::FlagSaver defaults_;
};

TEST_F(DaemonConfigTest, DedicatedRegionsNeedTenants) {
  auto refused = Parse({"--region=shm:x:1GiB,tenant=acme"});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("no --tenants"));
  EXPECT_TRUE(Parse({"--region=shm:x:1GiB,tenant=acme", "--tenants=/etc/t"}).ok());
}

TEST_F(DaemonConfigTest, DefaultsGiveOneShmRegionOnLoopback) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->listen, "127.0.0.1:7070");
  ASSERT_EQ(config->regions.size(), 1u);
  EXPECT_EQ(config->regions[0].path, "/dev/shm/sparsepool0");
  EXPECT_EQ(config->page_tokens, 64u);
  EXPECT_EQ(config->lease_timeout, absl::Seconds(30));
  EXPECT_EQ(config->reuse_grace, absl::Seconds(1));
  EXPECT_EQ(config->metrics_listen, "");  // no metrics endpoint unless asked
  EXPECT_EQ(Parse({"--metrics_listen=0.0.0.0:9464"})->metrics_listen, "0.0.0.0:9464");
  EXPECT_THAT(std::string(Parse({"--metrics_listen=9464"}).status().message()),
              HasSubstr("metrics_listen = \"9464\" is not HOST:PORT"));
}

TEST_F(DaemonConfigTest, FlagsOverrideTheConfigFile) {
  const std::string path = testing::TestTempDir() + "/sparsepoold.conf";
  std::ofstream(path) << "# a memory node\n"
                         "listen = 0.0.0.0:7070\n"
                         "region = shm:a:1GiB   # first\n"
                         "region = numa:1:b:2GiB\n"
                         "page_tokens = 32\n"
                         "lease_timeout = 5s\n"
                         "reuse_grace = 250ms\n";
  auto config = Parse({"--config=" + path, "--page_tokens=128"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "0.0.0.0:7070");
  EXPECT_EQ(config->regions.size(), 2u);
  EXPECT_EQ(config->page_tokens, 128u);
  EXPECT_EQ(config->lease_timeout, absl::Seconds(5));
  EXPECT_EQ(config->reuse_grace, absl::Milliseconds(250));
  EXPECT_EQ(Parse({"--reuse_grace=0s"})->reuse_grace, absl::ZeroDuration());
  // The command line's regions replace the file's; repeated, they add up.
  config = Parse({"--config=" + path, "--region=shm:c:1GiB"});
  ASSERT_EQ(config->regions.size(), 1u);
  EXPECT_EQ(config->regions[0].path, "/dev/shm/c");
  config = Parse({"--region=shm:c:1GiB", "--listen=127.0.0.1:0", "--region", "shm:d:1GiB;shm:e:1GiB"});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->regions.size(), 3u);
  EXPECT_EQ(config->regions[2].path, "/dev/shm/e");
  EXPECT_EQ(config->listen, "127.0.0.1:0");
}

// --flagfile (Abseil's: one --flag=value per line) works beside --config.
TEST_F(DaemonConfigTest, AFlagfileSetsFlags) {
  const std::string path = testing::TestTempDir() + "/sparsepoold.flags";
  std::ofstream(path) << "--listen=0.0.0.0:7171\n--page_tokens=16\n--region=shm:f:1GiB\n";
  auto config = Parse({"--flagfile=" + path});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "0.0.0.0:7171");
  EXPECT_EQ(config->page_tokens, 16u);
  ASSERT_EQ(config->regions.size(), 1u);
  std::ofstream(path) << "--config=/etc/sparsepool/sparsepoold.conf\n";
  EXPECT_THAT(std::string(Parse({"--flagfile=" + path}).status().message()), HasSubstr("not in a --flagfile"));
}

// The example memory-node config in deploy/ stays valid as settings are added.
TEST_F(DaemonConfigTest, TheDeployedExampleConfigParses) {
  auto config = Parse({"--config=deploy/sparsepoold.conf"});  // Bazel runs tests from the runfiles root
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->regions.size(), 3u);
  EXPECT_EQ(config->listen, "0.0.0.0:7070");
  EXPECT_EQ(config->metrics_listen, "0.0.0.0:9464");
  EXPECT_EQ(config->reuse_grace, absl::Seconds(1));
  EXPECT_EQ(config->tenants, "/etc/sparsepool/tenants.conf") << "the deployed daemon serves tenants";
  EXPECT_FALSE(config->tls_cert.empty()) << "over TLS";
}

// The three-node example (deploy/cluster): each node's config parses through the same
// path as the command line (the cluster settings' checks included).
TEST_F(DaemonConfigTest, TheThreeNodeClusterExampleParses) {
  for (int node = 1; node <= 3; ++node) {
    const std::string path = absl::StrCat("deploy/cluster/sparsepoold-mem", node, ".conf");
    SCOPED_TRACE(path);
    auto config = Parse({absl::StrCat("--config=", path)});
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->node_name, absl::StrCat("mem", node));
    EXPECT_EQ(config->node_id, static_cast<uint32_t>(node));
    EXPECT_EQ(config->advertise, absl::StrCat("10.0.0.1", node, ":7070"));
    EXPECT_EQ(config->etcd, "10.0.0.11:2379,10.0.0.12:2379,10.0.0.13:2379");
    EXPECT_EQ(config->etcd_ttl, absl::Seconds(10));
    EXPECT_EQ(config->regions.size(), 2u);
  }
}

TEST_F(DaemonConfigTest, ClusterSettingsAreCheckedTogether) {
  for (const auto& [args, fragment] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--etcd=127.0.0.1:2379"}, "give it --node_name and --node_id"},
           {{"--node_name=a", "--node_id=1"}, "give --etcd too"},
           {{"--etcd=e:1", "--node_name=a b", "--node_id=1"}, "is not 1-63 letters"},
           {{"--etcd=e:1", "--node_name=a", "--node_id=0"}, "give it --node_name and --node_id"},
           {{"--etcd=e:1", "--node_name=a", "--node_id=16384"}, "node_id = \"16384\" is not a whole number in [1, 16383]"},
           {{"--etcd_prefix=sparsepool"}, "starting with /"},
           {{"--etcd_ttl=0s"}, "from 1s to 10m"}}) {
    auto config = Parse(args);
    ASSERT_FALSE(config.ok()) << args[0];
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(fragment));
  }
}

TEST_F(DaemonConfigTest, TenantsAndTlsGoTogetherOffLoopback) {
  auto loopback = Parse({"--tenants=/etc/sparsepool/tenants.conf"});
  ASSERT_TRUE(loopback.ok()) << loopback.status();
  EXPECT_EQ(loopback->tenants, "/etc/sparsepool/tenants.conf");
  auto network = Parse({"--tenants=/t", "--listen=0.0.0.0:7070"});
  ASSERT_FALSE(network.ok());
  EXPECT_THAT(std::string(network.status().message()), HasSubstr("tokens in plaintext across the network"));
  auto tls = Parse({"--tenants=/t", "--listen=10.0.0.7:7070", "--tls_cert=/c.pem", "--tls_key=/k.pem",
                    "--tls_client_ca=/ca.pem"});
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->tls_client_ca, "/ca.pem");
  EXPECT_THAT(std::string(Parse({"--tls_cert=/c.pem"}).status().message()), HasSubstr("go together"));
  EXPECT_THAT(std::string(Parse({"--tls_client_ca=/ca.pem"}).status().message()), HasSubstr("needs TLS"));
  for (const char* address : {"127.0.0.1:7070", "127.8.9.10:1", "localhost:7070", "[::1]:7070", "::1:7070"}) {
    EXPECT_TRUE(IsLoopbackAddress(address)) << address;
  }
  for (const char* address : {"0.0.0.0:7070", "10.0.0.7:7070", "[::]:7070", "128.0.0.1:7070", "localhost.evil:1"}) {
    EXPECT_FALSE(IsLoopbackAddress(address)) << address;
  }
}

// An empty value (a template's unset variable) is refused, not read as "off": a daemon
// must not start without the tenants or TLS files it was meant to have.
TEST_F(DaemonConfigTest, EmptyValuesAreRefusedNotReadAsOff) {
  for (const char* line : {"tenants =\n", "tls_client_ca =\n", "region =\n", "listen =\n"}) {
    absl::Status s = ApplyText(line);
    EXPECT_THAT(std::string(s.message()), HasSubstr("is given with an empty value")) << line;
    EXPECT_THAT(std::string(s.message()), HasSubstr("node.conf:1: ")) << line;
  }
  for (const char* flag : {"--tenants=", "--tls_cert=", "-port_file="}) {
    EXPECT_THAT(std::string(Parse({flag}).status().message()), HasSubstr("is given with an empty value")) << flag;
  }
}

TEST_F(DaemonConfigTest, ErrorsNameTheLineAndTheSetting) {
  absl::Status s = ApplyText("listen = 127.0.0.1:1\nbogus = 3\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("node.conf:2: unknown setting \"bogus\""));
  s = ApplyText("helpfull = true\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown setting \"helpfull\"")) << "Abseil's flags are not settings";
  s = ApplyText("page_tokens = lots\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("page_tokens = \"lots\""));
  s = ApplyText("just words\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("expected KEY = VALUE"));
  s = ApplyText("region = shm:x\n");
  EXPECT_THAT(std::string(s.message()), HasSubstr("node.conf:1: "));
  EXPECT_FALSE(Parse({"--lease_timeout=-3s"}).ok());
  for (const char* bad : {"--reuse_grace=-1s", "--reuse_grace=2m"}) {
    EXPECT_THAT(std::string(Parse({bad}).status().message()), HasSubstr("is not a duration from 0s to 1m")) << bad;
  }
  EXPECT_THAT(std::string(Parse({"positional"}).status().message()), HasSubstr("unexpected argument"));
  EXPECT_THAT(std::string(Parse({"--", "--region=shm:z:1GiB"}).status().message()), HasSubstr("unexpected argument"))
      << "flags end at --";
  EXPECT_THAT(std::string(Parse({"--config=a", "--config=b"}).status().message()), HasSubstr("more than once"));
  EXPECT_TRUE(absl::IsNotFound(Parse({"--config=/nonexistent/file"}).status()));
}

// What Abseil's parser refuses ends the program with its message; --help lists the
// flags and exits 0.
TEST_F(DaemonConfigTest, MalformedFlagsExitAndHelpExitsZero) {
  EXPECT_EXIT(Parse({"--listen"}), ::testing::ExitedWithCode(1), "Missing the value for the flag 'listen'");
  EXPECT_EXIT(Parse({"--reuse_grace=soon"}), ::testing::ExitedWithCode(1), "Illegal value 'soon'");
  EXPECT_EXIT(Parse({"--no_such_flag=1"}), ::testing::ExitedWithCode(1), "Unknown command line flag");
  EXPECT_EXIT(
      {
        (void)Parse({"--help"});
        std::fflush(stdout);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace sparsepool
