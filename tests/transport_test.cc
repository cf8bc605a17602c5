// One test body over every data-plane transport present here: the CXL / shared-memory
// path, UCX over tcp and UCX over shared memory (UCX_TLS chooses). Real daemons, real
// endpoints. On an RDMA cluster the same tests run with UCX_TLS=rc.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <random>
#include <thread>

#include "absl/time/clock.h"
#include "bench/entry_pattern.h"
#include "client/client_internal.h"
#include "client/sparsepool_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon_process.h"
#include "tests/ucx_loopback.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

struct Transport {
  const char* name;
  const char* client_transport;
  const char* ucx_tls;  // null: not UCX
  int copy_threads = 1;  // "cxl": threads that share each gather
};

constexpr uint32_t kEntry = 656;

class TransportTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    if (GetParam().ucx_tls != nullptr) {
      testing::UseUcxOnLoopback(GetParam().ucx_tls);  // read by UCX in the daemon and here
      setenv("UCX_WARN_UNUSED_ENV_VARS", "n", 1);
    }
    testing::DaemonOptions options;
    options.region_size = "64MiB";
    options.same_address_on_restart = true;
    // No reuse grace: only release fencing keeps racing writes out of reused memory.
    options.extra_args = {"--reuse_grace=0s"};
    if (GetParam().ucx_tls != nullptr) options.extra_args.push_back("--ucx=true");
    daemon_ = std::make_unique<testing::DaemonProcess>(
        std::string(GetParam().name) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        options);
    options_ = options;
    ASSERT_TRUE(daemon_->Start().ok()) << daemon_->Log();
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
  }

  std::unique_ptr<Client> Connect(absl::Duration keepalive_interval = absl::Seconds(5),
                                  absl::Duration rpc_timeout = absl::Seconds(3)) {
    ClientOptions options;
    options.keepalive_interval = keepalive_interval;
    options.address = daemon_->address();
    options.transport = GetParam().client_transport;
    options.copy_threads = GetParam().copy_threads;
    options.rpc_timeout = rpc_timeout;
    auto client = Client::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  SequenceId CreateAndWrite(Client& client, uint64_t tokens, uint32_t stripes = 0) {
    SequenceSpec spec;
    spec.layers = 3;
    spec.entry_bytes = kEntry;
    spec.tokens = tokens;
    spec.stripes = stripes;
    auto id = client.CreateSequence(spec);
    EXPECT_TRUE(id.ok()) << id.status();
    std::vector<std::byte> entries(tokens * kEntry);
    for (uint32_t layer = 0; layer < 3; ++layer) {
      for (uint64_t t = 0; t < tokens; ++t) {
        bench::FillEntry(3, *id, layer, t, absl::MakeSpan(entries).subspan(t * kEntry, kEntry));
      }
      absl::Status written = client.WriteEntries(*id, layer, 0, entries);
      EXPECT_TRUE(written.ok()) << written;
    }
    return *id;
  }

  // Fetches a random top-k (with padding and runs of adjacent tokens) and checks it.
  // k is not a multiple of the CXL path's unit of parallel work, so that rows split
  // into whole units and a partial one.
  absl::Status FetchAndCheck(Client& client, const std::vector<SequenceId>& batch, uint64_t tokens,
                             std::mt19937_64& rng) {
    const size_t k = 600;
    std::vector<int32_t> indices(batch.size() * k);
    for (size_t i = 0; i < indices.size(); ++i) {
      const uint64_t r = rng() % 10;
      indices[i] = r == 0 ? -1 : (r < 4 && i > 0 && indices[i - 1] >= 0 && uint64_t(indices[i - 1]) + 1 < tokens)
                                    ? indices[i - 1] + 1
                                    : static_cast<int32_t>(rng() % tokens);
    }
    const uint32_t layer = rng() % 3;
    std::vector<std::byte> out(indices.size() * kEntry, std::byte{0x5C});
    absl::Status fetched = client.FetchTopK(layer, batch, indices, absl::MakeSpan(out));
    if (!fetched.ok()) return fetched;
    std::vector<std::byte> expected(kEntry);
    for (size_t i = 0; i < indices.size(); ++i) {
      const std::byte* got = out.data() + i * kEntry;
      if (indices[i] < 0) {
        if (got[0] != std::byte{0x5C}) return absl::DataLossError("padding slot was written");
        continue;
      }
      bench::FillEntry(3, batch[i / k], layer, indices[i], absl::MakeSpan(expected));
      if (std::memcmp(got, expected.data(), kEntry) != 0) {
        return absl::DataLossError(absl::StrCat("wrong bytes for token ", indices[i]));
      }
    }
    return absl::OkStatus();
  }

  testing::DaemonOptions options_;
  std::unique_ptr<testing::DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  std::mt19937_64 rng_{21};
};

TEST_P(TransportTest, WritesAndTopKFetchesRoundTrip) {
  const std::vector<SequenceId> batch = {CreateAndWrite(*client_, 300), CreateAndWrite(*client_, 300)};
  for (int round = 0; round < 10; ++round) {
    absl::Status s = FetchAndCheck(*client_, batch, 300, rng_);
    ASSERT_TRUE(s.ok()) << s;
  }
}

TEST_P(TransportTest, BadIndicesAreRefusedBeforeAnyTransfer) {
  const SequenceId id = CreateAndWrite(*client_, 100);
  std::vector<std::byte> out(2 * kEntry);
  absl::Status s = client_->FetchTopK(0, {id}, std::vector<int32_t>{5, 100}, absl::MakeSpan(out));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("token index 100"));
  s = client_->FetchTopK(0, {id}, std::vector<int32_t>{-3, 1}, absl::MakeSpan(out));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
}

TEST_P(TransportTest, SeveralClientsAtOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      auto client = Connect();
      if (client == nullptr) {
        ++failures;
        return;
      }
      std::mt19937_64 rng(t);
      const SequenceId id = CreateAndWrite(*client, 150);
      for (int round = 0; round < 5; ++round) {
        if (!FetchAndCheck(*client, {id}, 150, rng).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_P(TransportTest, GatherThreadsOutOfRangeAreRefused) {
  if (std::string(GetParam().client_transport) != "cxl") GTEST_SKIP() << "a CXL option";
  ClientOptions options;
  options.address = daemon_->address();
  for (int threads : {0, -3, kMaxCopyThreads + 1}) {
    options.copy_threads = threads;
    auto client = Client::Connect(options);
    EXPECT_TRUE(absl::IsInvalidArgument(client.status())) << client.status();
    EXPECT_THAT(std::string(client.status().message()),
                HasSubstr(absl::StrCat("copy_threads is ", threads, "; it must be 1 to 64")));
  }
}

// A daemon killed mid-run: RDMA fetches fail cleanly within a bounded time (shared
// memory ones keep reading the region, which outlives the daemon); after a restart on
// the same region every transport serves the right bytes again.
TEST_P(TransportTest, AStaleLayoutIsCaughtBeforeItsBytesAreUsedOrOverwritten) {
  // Most of the 64 MiB region: a second sequence must reuse the first one's pages.
  const uint64_t tokens = 30000;
  const SequenceId first = CreateAndWrite(*client_, tokens);
  auto reader = Connect();  // other workers, holding the layout
  auto writer = Connect();
  ASSERT_TRUE(internal::Layout(*reader, first).ok());
  ASSERT_TRUE(internal::Layout(*writer, first).ok());
  ASSERT_TRUE(client_->ReleaseSequence(first).ok());
  std::mt19937_64 rng(21);
  const absl::Status stale = FetchAndCheck(*reader, {first}, tokens, rng);
  EXPECT_TRUE(absl::IsNotFound(stale)) << stale;
  EXPECT_THAT(std::string(stale.message()), HasSubstr("while this client still used its layout"));
  const SequenceId second = CreateAndWrite(*client_, tokens);
  std::vector<std::byte> garbage(10 * kEntry, std::byte{0xEE});
  const absl::Status refused = writer->WriteEntries(first, 1, 0, garbage);
  EXPECT_TRUE(absl::IsNotFound(refused)) << refused;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(FetchAndCheck(*client_, {second}, tokens, rng).ok());
}

// A write racing a release never lands in the sequence that reuses the memory, with no
// reuse grace: the daemon gives the memory out again only after the writer's client
// has acknowledged the release, which it does once the writes it began before are done.
// With the writer unfenced (keepalive_interval 0) this failed in every UCX tcp run and
// in half the UCX sm runs here (8-14 MB of the writer's bytes in the next sequence);
// the CXL writer here finished its piece before the daemon's zeroing caught up.
TEST_P(TransportTest, WritesRacingAReleaseNeverLandInTheSequenceThatReusesTheMemory) {
  // One sequence takes most of the 64 MiB region: the next must reuse its pages.
  SequenceSpec spec;
  spec.layers = 1;
  spec.entry_bytes = kEntry;
  spec.tokens = 60000;
  // Each write is a 39 MB piece: over UCX tcp under the sanitizers on two busy cores one
  // can take seconds, so the writer's deadline is generous (a write that outlived it
  // would end the race before the release).
  auto writer = Connect(absl::Seconds(5), absl::Seconds(30));
  std::vector<std::byte> ones(spec.tokens * kEntry, std::byte{0xAB});
  std::vector<int32_t> every_token(spec.tokens);
  std::iota(every_token.begin(), every_token.end(), 0);
  std::vector<std::byte> read(spec.tokens * kEntry);
  std::mt19937_64 rng(5);
  for (int round = 0; round < 4; ++round) {
    auto id = client_->CreateSequence(spec);
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(internal::Layout(*writer, *id).ok());
    std::atomic<int> writes{0};
    std::atomic<bool> finished{false};
    absl::Status stopped;
    std::thread writing([&] {
      while (true) {
        absl::Status s = writer->WriteEntries(*id, 0, 0, ones);
        if (!s.ok()) {
          stopped = s;
          finished = true;
          return;
        }
        ++writes;
      }
    });
    // The release must race writes: wait for the first, unless the writer failed first.
    while (writes.load() == 0 && !finished.load()) absl::SleepFor(absl::Microseconds(200));
    if (writes.load() == 0) {
      writing.join();
      FAIL() << "round " << round << ": the writer's first write failed: " << stopped;
    }
    absl::SleepFor(absl::Microseconds(rng() % 3000));
    ASSERT_TRUE(client_->ReleaseSequence(*id).ok());
    auto next = client_->CreateSequence(spec);  // reuses the released pages
    writing.join();
    EXPECT_TRUE(absl::IsNotFound(stopped)) << stopped;
    ASSERT_TRUE(next.ok()) << next.status();
    ASSERT_TRUE(client_->FetchTopK(0, {*next}, every_token, absl::MakeSpan(read)).ok());
    const size_t written = static_cast<size_t>(std::count(read.begin(), read.end(), std::byte{0xAB}));
    EXPECT_EQ(written, 0u) << "round " << round << ": " << written
                           << " bytes of the released sequence's writer landed in the next sequence";
    ASSERT_TRUE(client_->ReleaseSequence(*next).ok());
  }
}

// A sequence whose layers are striped over two regions, in one batch with one that is
// not: each layer's entries land in its stripe's region (read back from the region file
// itself) and come back over every transport; a release is caught through the home
// region's record, on a layer that lives in the other region too.
TEST_P(TransportTest, AStripedSequenceRoundTripsAndItsReleaseIsCaught) {
  const std::string second = absl::StrCat("/dev/shm/sparsepool-test-stripes-", GetParam().name, "-", getpid());
  unlink(second.c_str());
  client_.reset();
  daemon_.reset();
  testing::DaemonOptions options = options_;
  options.extra_args.push_back(absl::StrCat("--region=shm:", second, ":64MiB"));
  daemon_ = std::make_unique<testing::DaemonProcess>(std::string(GetParam().name) + "-striped", options);
  ASSERT_TRUE(daemon_->Start().ok()) << daemon_->Log();
  client_ = Connect();
  ASSERT_NE(client_, nullptr);
  const std::vector<SequenceId> batch = {CreateAndWrite(*client_, 500, 2), CreateAndWrite(*client_, 500)};
  auto layout = internal::Layout(*client_, batch[0]);
  ASSERT_TRUE(layout.ok()) << layout.status();
  ASSERT_EQ(layout->stripes(), 2u);
  ASSERT_NE(layout->LayerRegion(1).path, layout->LayerRegion(0).path);
  for (uint32_t layer = 0; layer < 3; ++layer) {
    const RegionRef& region = layout->LayerRegion(layer);
    const int fd = open(region.path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << region.path;
    std::vector<std::byte> stored(kEntry), expected(kEntry);
    for (uint64_t token : {uint64_t{0}, uint64_t{137}, uint64_t{499}}) {
      ASSERT_EQ(pread(fd, stored.data(), kEntry, static_cast<off_t>(layout->EntryOffset(layer, token))), ssize_t{kEntry});
      bench::FillEntry(3, batch[0], layer, token, absl::MakeSpan(expected));
      EXPECT_EQ(stored, expected) << "layer " << layer << " token " << token << " in " << region.path;
    }
    close(fd);
  }
  for (int round = 0; round < 10; ++round) {
    absl::Status s = FetchAndCheck(*client_, batch, 500, rng_);
    ASSERT_TRUE(s.ok()) << s;
  }
  auto reader = Connect();
  ASSERT_TRUE(internal::Layout(*reader, batch[0]).ok());
  ASSERT_TRUE(client_->ReleaseSequence(batch[0]).ok());
  std::vector<int32_t> indices(64);
  std::iota(indices.begin(), indices.end(), 0);
  std::vector<std::byte> out(indices.size() * kEntry);
  const SequenceId striped[] = {batch[0]};
  const absl::Status stale = reader->FetchTopK(1, striped, indices, absl::MakeSpan(out));
  EXPECT_TRUE(absl::IsNotFound(stale)) << stale;
  reader.reset();
  client_.reset();
  daemon_.reset();
  unlink(second.c_str());
}

TEST_P(TransportTest, DaemonKilledMidBatchThenRestarted) {
  const std::vector<SequenceId> batch = {CreateAndWrite(*client_, 400)};
  ASSERT_TRUE(FetchAndCheck(*client_, batch, 400, rng_).ok());
  daemon_->Kill();
  const absl::Time start = absl::Now();
  absl::Status during = FetchAndCheck(*client_, batch, 400, rng_);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  if (GetParam().ucx_tls != nullptr) {
    EXPECT_TRUE(absl::IsUnavailable(during)) << during;
  } else {
    EXPECT_TRUE(during.ok()) << during;
  }
  ASSERT_TRUE(daemon_->Start().ok()) << daemon_->Log();
  absl::Status after;
  for (int attempt = 0; attempt < 3; ++attempt) {  // the first call may find the old peer
    after = FetchAndCheck(*client_, batch, 400, rng_);
    if (after.ok()) break;
  }
  EXPECT_TRUE(after.ok()) << after;
}

INSTANTIATE_TEST_SUITE_P(Transports, TransportTest,
                         ::testing::Values(Transport{"cxl", "cxl", nullptr},
                                           Transport{"cxl_4_copy_threads", "cxl", nullptr, 4},
                                           Transport{"ucx_tcp", "ucx", "tcp"},
                                           Transport{"ucx_sm", "ucx", "sm,self"}),
                         [](const ::testing::TestParamInfo<Transport>& info) { return info.param.name; });

}  // namespace
}  // namespace sparsepool
