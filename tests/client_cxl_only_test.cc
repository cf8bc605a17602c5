// The client built without UCX and libibverbs (--define=sparsepool_rdma=off) against a
// real daemon: it links and runs on load and store alone, neither library is in the
// process, and asking it for an RDMA transport says which build left it out.
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/entry_pattern.h"
#include "client/sparsepool_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon_process.h"

namespace sparsepool {
namespace {

// The plain build's client has every transport; this test is for the other build.
class ClientCxlOnlyTest : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef SPARSEPOOL_RDMA_LEFT_OUT
    GTEST_SKIP() << "the client of this build has UCX and libibverbs; this test runs in the build without them "
                    "(bazel test --define=sparsepool_rdma=off //tests:client_cxl_only_test; tools/test.sh does)";
#endif
  }
};

using ::sparsepool::bench::FillEntry;
using ::sparsepool::testing::DaemonProcess;
using ::testing::HasSubstr;

constexpr uint64_t kSeed = 0xc1;
constexpr uint32_t kEntryBytes = 656;
constexpr uint32_t kLayers = 3;
constexpr uint64_t kTokens = 300;

ClientOptions OptionsFor(const DaemonProcess& daemon, const std::string& transport) {
  ClientOptions options;
  options.address = daemon.address();
  options.transport = transport;
  options.rpc_timeout = absl::Seconds(5);
  return options;
}

std::string MappedLibraries() {
  std::ifstream maps("/proc/self/maps");
  return std::string(std::istreambuf_iterator<char>(maps), std::istreambuf_iterator<char>());
}

TEST_F(ClientCxlOnlyTest, WritesAndFetchesWithoutUcxOrVerbsInTheProcess) {
  DaemonProcess daemon("cxl_only");
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  auto client = Client::Connect(OptionsFor(daemon, "cxl"));
  ASSERT_TRUE(client.ok()) << client.status();

  SequenceSpec spec;
  spec.layers = kLayers;
  spec.entry_bytes = kEntryBytes;
  spec.tokens = kTokens;
  auto id = (*client)->CreateSequence(spec);
  ASSERT_TRUE(id.ok()) << id.status();
  std::vector<std::byte> entries(kTokens * kEntryBytes);
  for (uint32_t layer = 0; layer < kLayers; ++layer) {
    for (uint64_t t = 0; t < kTokens; ++t) {
      FillEntry(kSeed, *id, layer, t, absl::MakeSpan(entries).subspan(t * kEntryBytes, kEntryBytes));
    }
    ASSERT_TRUE((*client)->WriteEntries(*id, layer, 0, entries).ok());
  }
  const std::vector<int32_t> indices = {299, 0, -1, 64, 63, 150};
  std::vector<std::byte> out(indices.size() * kEntryBytes);
  const std::vector<SequenceId> batch = {*id};
  ASSERT_TRUE((*client)->FetchTopK(1, batch, indices, absl::MakeSpan(out)).ok());
  std::vector<std::byte> expected(kEntryBytes);
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0) continue;
    FillEntry(kSeed, *id, 1, indices[i], absl::MakeSpan(expected));
    EXPECT_EQ(0, std::memcmp(out.data() + i * kEntryBytes, expected.data(), kEntryBytes)) << indices[i];
  }

  const std::string libraries = MappedLibraries();
  EXPECT_THAT(libraries, ::testing::Not(HasSubstr("libucp"))) << "UCX was linked into the cxl-only client";
  EXPECT_THAT(libraries, ::testing::Not(HasSubstr("libibverbs"))) << "libibverbs was linked into the cxl-only client";
}

TEST_F(ClientCxlOnlyTest, AskingForAnRdmaTransportSaysItWasLeftOut) {
  DaemonProcess daemon("cxl_only_refuses");
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  for (const std::string transport : {"ucx", "verbs"}) {
    auto client = Client::Connect(OptionsFor(daemon, transport));
    ASSERT_FALSE(client.ok()) << transport;
    EXPECT_TRUE(absl::IsFailedPrecondition(client.status())) << client.status();
    EXPECT_THAT(std::string(client.status().message()), HasSubstr("\"" + transport + "\" was left out"));
    EXPECT_THAT(std::string(client.status().message()), HasSubstr("--define=sparsepool_rdma=off"));
  }
  auto unknown = Client::Connect(OptionsFor(daemon, "rdma"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(unknown.status())) << unknown.status();
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("unknown transport \"rdma\" (available: cxl;"));
}

}  // namespace
}  // namespace sparsepool
