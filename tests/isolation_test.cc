// The attack suite: what one client could do to another's sequences, tried against a
// real daemon. Each test here failed on the code before the fix it names.
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/entry_pattern.h"
#include "client/client_internal.h"
#include "client/sparsepool_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client_support.h"
#include "tests/daemon_process.h"

namespace sparsepool {
namespace {

using ::sparsepool::testing::ConnectTo;

using ::testing::HasSubstr;

constexpr uint32_t kEntry = 656;

SequenceSpec OneLayer(uint64_t tokens) {
  SequenceSpec spec;
  spec.layers = 1;
  spec.entry_bytes = kEntry;
  spec.tokens = tokens;
  spec.tenant = "t";
  return spec;
}

absl::Status WritePattern(Client& client, SequenceId id, uint64_t tokens, uint64_t seed) {
  std::vector<std::byte> entries(tokens * kEntry);
  for (uint64_t t = 0; t < tokens; ++t) {
    bench::FillEntry(seed, id, 0, t, absl::MakeSpan(entries).subspan(t * kEntry, kEntry));
  }
  return client.WriteEntries(id, 0, 0, entries);
}

// Ids were rebuilt from the records at start-up, so the id of a released sequence
// whose memory went to another came back after a restart; a client still holding the
// old layout then fetched the new owner's entries with status OK.
TEST(IsolationTest, AStaleLayoutNeverReadsASequenceCreatedAfterARestart) {
  testing::DaemonOptions options;
  options.region_size = "64MiB";
  options.same_address_on_restart = true;
  options.extra_args = {"--reuse_grace=0s"};
  testing::DaemonProcess daemon("isolation-restart", options);
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  auto owner = ConnectTo(daemon.address());
  auto holder = ConnectTo(daemon.address());  // another worker, keeping its layout
  ASSERT_TRUE(owner && holder);

  const SequenceId kept = *owner->CreateSequence(OneLayer(20000));
  const SequenceId doomed = *owner->CreateSequence(OneLayer(40000));
  ASSERT_TRUE(WritePattern(*owner, doomed, 40000, 1).ok());
  ASSERT_TRUE(internal::Layout(*holder, doomed).ok());
  ASSERT_TRUE(owner->ReleaseSequence(doomed).ok());
  // The kept sequence grows into the released memory: the doomed one is evicted, and it
  // held the highest id.
  ASSERT_TRUE(owner->ExtendSequence(kept, 60000).ok());
  ASSERT_EQ(daemon.Stop(), 0) << daemon.Log();
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();

  auto successor = owner->CreateSequence(OneLayer(30000));
  ASSERT_TRUE(successor.ok()) << successor.status();
  EXPECT_GT(*successor, doomed) << "an evicted sequence's id was issued again";
  ASSERT_TRUE(WritePattern(*owner, *successor, 30000, 2).ok());
  std::vector<int32_t> tokens(2048);
  std::iota(tokens.begin(), tokens.end(), 0);
  std::vector<std::byte> out(tokens.size() * kEntry);
  const absl::Status stale = holder->FetchTopK(0, {doomed}, tokens, absl::MakeSpan(out));
  EXPECT_TRUE(absl::IsNotFound(stale)) << stale;
}

}  // namespace
}  // namespace sparsepool
