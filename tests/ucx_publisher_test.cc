// UcxPublisher: one UCX worker per data-plane domain, each in a process of its own that
// maps only its domain's regions (UCX's software RMA checks no key, so what the process
// maps is what a peer can reach). This binary is also the worker: the publisher starts
// /proc/self/exe with kUcxDomainServerFlag, as the daemon does. Over tcp and sm.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/ucx_domain_server.h"
#include "service/ucx_publisher.h"
#include "tests/ucx_loopback.h"
#include "transport/cxl/region_mapping.h"
#include "transport/rdma/ucx_context.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kRegionBytes = 4 << 20;

std::byte PatternByte(int region, uint64_t offset) {
  return static_cast<std::byte>((offset * 7 + region * 101 + 1) & 0xff);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A client's view of one region behind a domain's worker, as the RDMA data plane has it.
// Members in this order so that the key goes before the endpoint, the endpoint before
// the context.
struct RemoteRegion {
  std::unique_ptr<UcxContext> ucx;
  std::unique_ptr<UcxEndpoint> endpoint;
  std::unique_ptr<UcxRkey> rkey;
  uint64_t base = 0;

  absl::Status Get(uint64_t offset, absl::Span<std::byte> out) {
    ucp_request_param_t params = {};
    std::vector<void*> requests = {
        ucp_get_nbx(endpoint->ep(), out.data(), out.size(), base + offset, rkey->rkey(), &params)};
    return ucx->Wait(requests, absl::Seconds(10), "a UCX get");
  }
  absl::Status Put(uint64_t offset, absl::Span<const std::byte> in) {
    ucp_request_param_t params = {};
    // Puts complete locally before they land remotely: the flush makes them visible.
    std::vector<void*> requests = {
        ucp_put_nbx(endpoint->ep(), in.data(), in.size(), base + offset, rkey->rkey(), &params),
        ucp_ep_flush_nbx(endpoint->ep(), &params)};
    return ucx->Wait(requests, absl::Seconds(10), "a UCX put");
  }
};

absl::StatusOr<std::unique_ptr<RemoteRegion>> Reach(const RegionRef& ref) {
  auto remote = std::make_unique<RemoteRegion>();
  auto ucx = UcxContext::Create();
  if (!ucx.ok()) return ucx.status();
  remote->ucx = *std::move(ucx);
  auto endpoint = UcxEndpoint::Connect(remote->ucx.get(), ref.ucx_worker_address);
  if (!endpoint.ok()) return endpoint.status();
  remote->endpoint = *std::move(endpoint);
  auto rkey = UcxRkey::Unpack(remote->endpoint->ep(), ref.ucx_rkey);
  if (!rkey.ok()) return rkey.status();
  remote->rkey = *std::move(rkey);
  remote->base = ref.remote_base;
  return remote;
}

struct Wire {
  const char* name;
  const char* ucx_tls;
};

class UcxPublisherTest : public ::testing::TestWithParam<Wire> {
 protected:
  void SetUp() override {
    testing::UseUcxOnLoopback(GetParam().ucx_tls);  // read by UCX in the worker processes and here
    setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 1);
    const char* tmp = std::getenv("TEST_TMPDIR");
    static int test_number = 0;
    ++test_number;
    for (int r = 0; r < 2; ++r) {
      const std::string path =
          absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/region-", getpid(), "-", test_number, "-", r);
      unlink(path.c_str());
      auto spec = ParseRegionSpec(absl::StrCat("shm:", path, ":4MiB"));
      ASSERT_TRUE(spec.ok()) << spec.status();
      auto region = MappedRegion::OpenOrCreate(*spec);
      ASSERT_TRUE(region.ok()) << region.status();
      for (uint64_t i = 0; i < kRegionBytes; ++i) region->base()[i] = PatternByte(r, i);
      regions_.push_back(*std::move(region));
    }
  }
  void TearDown() override {
    for (const MappedRegion& region : regions_) unlink(region.path().c_str());
  }

  UcxDomainRegion Region(uint32_t r) const { return {r, RegionKind::kShm, regions_[r].path(), regions_[r].size()}; }

  // Domain 0 holds region 0, domain 1 region 1.
  std::unique_ptr<UcxPublisher> PublishApart() {
    auto publisher = UcxPublisher::Create({{Region(0)}, {Region(1)}}, "/proc/self/exe");
    EXPECT_TRUE(publisher.ok()) << publisher.status();
    return publisher.ok() ? *std::move(publisher) : nullptr;
  }

  std::vector<MappedRegion> regions_;
};

TEST_P(UcxPublisherTest, EachDomainsWorkerReadsAndWritesItsRegion) {
  auto publisher = PublishApart();
  ASSERT_NE(publisher, nullptr);
  std::vector<RegionRef> refs(2);
  for (uint32_t d = 0; d < 2; ++d) {
    refs[d].index = d;
    publisher->Annotate(refs[d], d);
    ASSERT_FALSE(refs[d].ucx_worker_address.empty());
    ASSERT_FALSE(refs[d].ucx_rkey.empty());
    // The base is the worker process's, not ours.
    EXPECT_NE(refs[d].remote_base, 0u);
  }
  EXPECT_NE(refs[0].ucx_worker_address, refs[1].ucx_worker_address) << "one worker per domain";

  // A domain that does not hold the region adds nothing.
  RegionRef elsewhere;
  elsewhere.index = 1;
  publisher->Annotate(elsewhere, 0);
  publisher->Annotate(elsewhere, 7);
  EXPECT_TRUE(elsewhere.ucx_worker_address.empty());
  EXPECT_TRUE(elsewhere.ucx_rkey.empty());
  EXPECT_EQ(elsewhere.remote_base, 0u);

  for (int d = 0; d < 2; ++d) {
    auto remote = Reach(refs[d]);
    ASSERT_TRUE(remote.ok()) << remote.status();
    for (uint64_t offset : {uint64_t{0}, uint64_t{12345}, kRegionBytes - 4096}) {
      std::vector<std::byte> got(4096);
      ASSERT_TRUE((*remote)->Get(offset, absl::MakeSpan(got)).ok()) << "domain " << d;
      EXPECT_EQ(0, std::memcmp(got.data(), regions_[d].base() + offset, got.size()))
          << "domain " << d << " offset " << offset;
    }
  }

  // A put through domain 1's worker lands in the region's memory, seen by our mapping.
  auto remote = Reach(refs[1]);
  ASSERT_TRUE(remote.ok()) << remote.status();
  std::vector<std::byte> written(1000);
  for (size_t i = 0; i < written.size(); ++i) written[i] = static_cast<std::byte>(255 - i % 251);
  ASSERT_NE(0, std::memcmp(written.data(), regions_[1].base() + 777, written.size()));
  ASSERT_TRUE((*remote)->Put(777, written).ok());
  EXPECT_EQ(0, std::memcmp(written.data(), regions_[1].base() + 777, written.size()));
  EXPECT_EQ(regions_[0].base()[777], PatternByte(0, 777)) << "region 0 untouched";
}

TEST_P(UcxPublisherTest, EachWorkerProcessMapsOnlyItsDomainsRegions) {
  auto publisher = PublishApart();
  ASSERT_NE(publisher, nullptr);
  const std::vector<pid_t> pids = publisher->child_pids();
  ASSERT_EQ(pids.size(), 2u);
  EXPECT_NE(pids[0], getpid());
  EXPECT_NE(pids[0], pids[1]);
  for (int d = 0; d < 2; ++d) {
    const std::string maps = ReadFile(absl::StrCat("/proc/", pids[d], "/maps"));
    EXPECT_THAT(maps, HasSubstr(regions_[d].path())) << "domain " << d;
    EXPECT_THAT(maps, Not(HasSubstr(regions_[1 - d].path()))) << "domain " << d;
  }
}

TEST_P(UcxPublisherTest, AWorkerThatCannotMapItsRegionFailsCreateNamingIt) {
  const std::string missing = absl::StrCat(regions_[0].path(), "-missing");
  auto absent = UcxPublisher::Create({{Region(0)}, {{1, RegionKind::kShm, missing, kRegionBytes}}}, "/proc/self/exe");
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kNotFound) << absent.status();
  EXPECT_THAT(std::string(absent.status().message()), HasSubstr("domain 1"));
  EXPECT_THAT(std::string(absent.status().message()), HasSubstr(absl::StrCat("open region ", missing)));
  // The worker that did start (domain 0's) was stopped and reaped with the rest.
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);

  UcxDomainRegion wrong_size = Region(1);
  wrong_size.bytes = 2 * kRegionBytes;
  auto resized = UcxPublisher::Create({{wrong_size}}, "/proc/self/exe");
  ASSERT_FALSE(resized.ok());
  EXPECT_EQ(resized.status().code(), absl::StatusCode::kFailedPrecondition) << resized.status();
  EXPECT_THAT(std::string(resized.status().message()),
              HasSubstr(absl::StrCat("region ", regions_[1].path(), " is ", kRegionBytes, " bytes")));

  auto no_program = UcxPublisher::Create({{Region(0)}}, "/nonexistent/sparsepoold");
  ASSERT_FALSE(no_program.ok());
  EXPECT_THAT(std::string(no_program.status().message()), HasSubstr("cannot start /nonexistent/sparsepoold"));
}

TEST_P(UcxPublisherTest, DestroyingThePublisherStopsItsWorkers) {
  auto publisher = PublishApart();
  ASSERT_NE(publisher, nullptr);
  EXPECT_TRUE(publisher->Check().ok());
  const std::vector<pid_t> pids = publisher->child_pids();
  const absl::Time start = absl::Now();
  publisher.reset();
  // They exit on their stdin's EOF, well within the 2 s grace before SIGKILL.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  for (pid_t pid : pids) {
    EXPECT_EQ(kill(pid, 0), -1) << "worker " << pid << " still exists";
    EXPECT_EQ(errno, ESRCH);
  }
}

TEST_P(UcxPublisherTest, CheckReportsAWorkerThatDied) {
  auto publisher = PublishApart();
  ASSERT_NE(publisher, nullptr);
  ASSERT_EQ(kill(publisher->child_pids()[1], SIGKILL), 0);
  absl::Status status;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(5); absl::Now() < deadline;) {
    if (!(status = publisher->Check()).ok()) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("domain 1"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("signal 9"));
  EXPECT_FALSE(publisher->Check().ok()) << "it looks without reaping";
}

// A daemon killed outright (no destructor runs) takes its workers with it.
TEST_P(UcxPublisherTest, WorkersDieWithTheDaemon) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t daemon = fork();
  ASSERT_GE(daemon, 0);
  if (daemon == 0) {
    // The stand-in daemon: publishes, tells the test its workers, and is killed.
    close(fds[0]);
    auto publisher = UcxPublisher::Create({{Region(0)}, {Region(1)}}, "/proc/self/exe");
    if (!publisher.ok()) _exit(1);
    const std::vector<pid_t> pids = (*publisher)->child_pids();
    if (write(fds[1], pids.data(), pids.size() * sizeof(pid_t)) < 0) _exit(1);
    raise(SIGKILL);
  }
  close(fds[1]);
  std::vector<pid_t> pids(2);
  const ssize_t n = read(fds[0], pids.data(), pids.size() * sizeof(pid_t));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(daemon, &status, 0), daemon);
  ASSERT_EQ(n, static_cast<ssize_t>(pids.size() * sizeof(pid_t))) << "the stand-in daemon failed to publish";
  for (pid_t pid : pids) {
    // Gone, or a zombie waiting for whoever inherited it.
    auto alive = [&] {
      const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
      const size_t paren = stat.rfind(')');
      return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] != 'Z';
    };
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (alive() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    EXPECT_FALSE(alive()) << "worker " << pid << " outlived its daemon";
  }
}

INSTANTIATE_TEST_SUITE_P(Wires, UcxPublisherTest,
                         ::testing::Values(Wire{"ucx_tcp", "tcp"}, Wire{"ucx_sm", "sm,self"}),
                         [](const ::testing::TestParamInfo<Wire>& info) { return info.param.name; });

}  // namespace
}  // namespace sparsepool

// The publisher starts this binary again as each domain's worker, as the daemon does.
int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == sparsepool::kUcxDomainServerFlag) {
    return sparsepool::RunUcxDomainServer(argc, argv);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
