#include "service/pool.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"
#include "tests/fake_clock.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int r = 0; r < 2; ++r) {
      RegionSpec spec;
      spec.path = absl::StrCat(testing::TestTempDir(), "/pool-", r, "-",
                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
      spec.size_bytes = 16 << 20;
      unlink(spec.path.c_str());
      specs_.push_back(spec);
    }
    Reopen();
  }
  void TearDown() override {
    pool_.reset();
    for (const auto& spec : specs_) unlink(spec.path.c_str());
  }

  void Reopen() {
    auto pool = OpenPool();
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
  }
  absl::StatusOr<std::unique_ptr<Pool>> OpenPool() {
    pool_.reset();
    std::vector<std::unique_ptr<RegionStore>> regions;
    for (const auto& spec : specs_) {
      RecoveryReport report;
      auto store = RegionStore::Open(static_cast<uint32_t>(regions.size()),
                                     *MappedRegion::OpenOrCreate(spec), 64, 0, &report);
      if (!store.ok()) return store.status();
      regions.push_back(*std::move(store));
    }
    PoolOptions options;
    options.lease_timeout = absl::Seconds(10);
    options.region_tenants = region_tenants_;
    return Pool::Open(std::move(regions), options, &clock_);
  }

  static CreateParams Params(uint64_t tokens, std::string client = "client-a") {
    CreateParams p;
    p.client_id = std::move(client);
    p.tenant = "tenant";
    p.layers = 4;
    p.entry_bytes = 656;
    p.tokens = tokens;
    return p;
  }

  std::vector<RegionSpec> specs_;
  std::vector<std::vector<std::string>> region_tenants_;  // by region; empty: shared
  testing::FakeClock clock_;
  std::unique_ptr<Pool> pool_;
};

TEST_F(PoolTest, CreateValidatesEveryField) {
  struct Case {
    std::function<void(CreateParams&)> mutate;
    const char* message;
  };
  const std::vector<Case> cases = {
      {[](CreateParams& p) { p.layers = 0; }, "layers 0"},
      {[](CreateParams& p) { p.layers = 5000; }, "layers 5000"},
      {[](CreateParams& p) { p.entry_bytes = 0; }, "entry_bytes 0"},
      {[](CreateParams& p) { p.entry_bytes = 1 << 21; }, "entry_bytes 2097152"},
      {[](CreateParams& p) { p.entry_alignment = 48; }, "entry_alignment 48"},
      {[](CreateParams& p) { p.page_tokens = 1 << 20; }, "page_tokens 1048576"},
      {[](CreateParams& p) { p.tokens = uint64_t{1} << 31; }, "tokens 2147483648"},
      {[](CreateParams& p) { p.tenant = std::string(64, 'x'); }, "tenant of 64 bytes"},
      {[](CreateParams& p) { p.client_id = std::string("a\0b", 3); }, "NUL"},
  };
  for (const Case& c : cases) {
    CreateParams p = Params(10);
    c.mutate(p);
    auto layout = pool_->Create(p);
    EXPECT_TRUE(absl::IsInvalidArgument(layout.status())) << c.message;
    EXPECT_THAT(std::string(layout.status().message()), HasSubstr(c.message));
  }
  EXPECT_EQ(pool_->Stats().live_sequences, 0u);
}

TEST_F(PoolTest, StrideFollowsTheAlignment) {
  CreateParams p = Params(10);
  p.entry_alignment = 64;
  EXPECT_EQ(pool_->Create(p)->entry_stride, 704u);
  p.entry_alignment = 0;
  EXPECT_EQ(pool_->Create(p)->entry_stride, 656u);
}

TEST_F(PoolTest, ExtendIsIdempotentAndNeverShrinks) {
  auto layout = pool_->Create(Params(100));
  ASSERT_TRUE(layout.ok());
  const SequenceId id = layout->sequence_id;
  EXPECT_EQ(pool_->Extend("client-a", id, 200)->tokens, 200u);
  EXPECT_EQ(pool_->Extend("client-a", id, 200)->tokens, 200u);
  auto shrink = pool_->Extend("client-a", id, 150);
  EXPECT_TRUE(absl::IsInvalidArgument(shrink.status()));
  EXPECT_THAT(std::string(shrink.status().message()), HasSubstr("cannot shrink"));
  EXPECT_TRUE(absl::IsNotFound(pool_->Extend("client-a", 999, 10).status()));
}

TEST_F(PoolTest, LeaseExpiryReclaimsOnlyTheSilentClientsSequences) {
  const SequenceId a = pool_->Create(Params(10, "a"))->sequence_id;
  const SequenceId b = pool_->Create(Params(10, "b"))->sequence_id;
  const SequenceId anonymous = pool_->Create(Params(10, ""))->sequence_id;
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(absl::Seconds(4));
    ASSERT_TRUE(pool_->KeepAlive("b").ok());
    EXPECT_TRUE(pool_->ExpireLeases().size() <= 1);
  }
  auto gone = pool_->GetLayout("", a);
  EXPECT_TRUE(absl::IsNotFound(gone.status()));
  EXPECT_THAT(std::string(gone.status().message()), HasSubstr("lease of its owner \"a\" expired"));
  EXPECT_TRUE(pool_->GetLayout("", b).ok());
  EXPECT_TRUE(pool_->GetLayout("", anonymous).ok());
  const PoolStats stats = pool_->Stats();
  EXPECT_EQ(stats.leases_expired, 1u);
  EXPECT_EQ(stats.reclaimable_sequences, 1u);
  EXPECT_EQ(stats.live_sequences, 2u);
  EXPECT_EQ(stats.leases, 1u);
  EXPECT_EQ(pool_->KeepAlive("b")->sequences, 1u);
}

TEST_F(PoolTest, AnyRequestNamingTheClientRenewsItsLease) {
  const SequenceId a = pool_->Create(Params(10, "a"))->sequence_id;
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(6));
    ASSERT_TRUE(pool_->GetLayout("a", a).ok());
    pool_->ExpireLeases();
  }
  EXPECT_TRUE(pool_->GetLayout("", a).ok());
}

// A placement key picks the region a sequence starts in (key modulo the regions, in
// region order), whatever the free space says; a region without room gives way to the
// other. Without a key, most free first.
TEST_F(PoolTest, APlacementKeyPicksTheRegionAndFallsBackWhenItIsFull) {
  for (uint32_t key : {0u, 1u, 2u, 3u, 5u}) {
    CreateParams p = Params(64);
    p.placement_key = key;
    auto layout = pool_->Create(p);
    ASSERT_TRUE(layout.ok()) << layout.status();
    EXPECT_EQ(layout->region.index, key % 2) << "key " << key;
  }
  // Region 1 nearly full (two sequences of about 40% each), key 1 still lands there
  // while it has room...
  for (int i = 0; i < 2; ++i) {
    CreateParams big = Params(2368);
    big.placement_key = 1;
    auto layout = pool_->Create(big);
    ASSERT_TRUE(layout.ok()) << layout.status();
    EXPECT_EQ(layout->region.index, 1u);
  }
  // ...and then goes to region 0 rather than failing.
  CreateParams big = Params(2368);
  big.placement_key = 1;
  auto fallback = pool_->Create(big);
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_EQ(fallback->region.index, 0u);
  // No key: whichever region has more free memory.
  const PoolStats stats = pool_->Stats();
  const uint32_t most_free = stats.regions[0].free_bytes >= stats.regions[1].free_bytes ? 0 : 1;
  auto unkeyed = pool_->Create(Params(64));
  ASSERT_TRUE(unkeyed.ok());
  EXPECT_EQ(unkeyed->region.index, most_free);
}

// A striped sequence: its layers round robin over the regions, stripe 0 (the home, with
// the record clients check) where the placement key puts it; it grows, is listed,
// released and evicted as one sequence, with every stripe's memory.
TEST_F(PoolTest, AStripedSequenceSpreadsItsLayersOverRegionsAndLivesAsOne) {
  const PoolStats empty = pool_->Stats();
  CreateParams p = Params(300);
  p.stripes = 2;
  p.placement_key = 1;
  auto layout = pool_->Create(p);
  ASSERT_TRUE(layout.ok()) << layout.status();
  ASSERT_TRUE(ValidateLayout(*layout).ok()) << ValidateLayout(*layout);
  EXPECT_EQ(layout->layers, 4u);
  EXPECT_EQ(layout->stripes(), 2u);
  EXPECT_EQ(layout->region.index, 1u) << "the placement key picks the home region";
  EXPECT_EQ(layout->LayerRegion(0).index, 1u);
  EXPECT_EQ(layout->LayerRegion(1).index, 0u);
  EXPECT_EQ(layout->LayerRegion(2).index, 1u);
  EXPECT_EQ(layout->LayerRegion(3).index, 0u);
  // Each region holds two layers' pages: the same bytes in each.
  const PoolStats one = pool_->Stats();
  const uint64_t used0 = empty.regions[0].free_bytes - one.regions[0].free_bytes;
  const uint64_t used1 = empty.regions[1].free_bytes - one.regions[1].free_bytes;
  EXPECT_GT(used0, 0u);
  EXPECT_EQ(used0, used1);
  // Pages of one region never overlap: the two stripes' layers are apart.
  std::set<std::pair<uint32_t, uint64_t>> pages;
  for (uint32_t layer = 0; layer < 4; ++layer) {
    for (uint64_t page = 0; page < layout->pages_per_layer; ++page) {
      EXPECT_TRUE(pages.emplace(layout->LayerRegion(layer).index,
                                layout->page_offsets[layer * layout->pages_per_layer + page])
                      .second);
    }
  }

  auto grown = pool_->Extend("client-a", layout->sequence_id, 1000);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(grown->tokens, 1000u);
  EXPECT_EQ(grown->pages_per_layer, 16u);
  EXPECT_EQ(grown->stripe_regions.size(), 1u);
  EXPECT_TRUE(ValidateLayout(*grown).ok());
  auto again = pool_->GetLayout("", layout->sequence_id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->page_offsets, grown->page_offsets);
  // The first pages stay where they were.
  for (uint32_t layer = 0; layer < 4; ++layer) {
    for (uint64_t page = 0; page < layout->pages_per_layer; ++page) {
      EXPECT_EQ(grown->page_offsets[layer * grown->pages_per_layer + page],
                layout->page_offsets[layer * layout->pages_per_layer + page]);
    }
  }

  const std::vector<SequenceSummary> listed = pool_->List("");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].stripes, 2u);
  EXPECT_EQ(listed[0].layers, 4u);
  EXPECT_EQ(listed[0].tokens, 1000u);
  const PoolStats two = pool_->Stats();
  EXPECT_EQ(listed[0].bytes, (empty.free_bytes - two.free_bytes));

  ASSERT_TRUE(pool_->Release("client-a", layout->sequence_id).ok());
  const PoolStats released = pool_->Stats();
  EXPECT_EQ(released.reclaimable_sequences, 1u);
  EXPECT_GT(released.regions[0].reclaimable_bytes, 0u);
  EXPECT_GT(released.regions[1].reclaimable_bytes, 0u);
  EXPECT_TRUE(absl::IsNotFound(pool_->GetLayout("", layout->sequence_id).status()));
  // A sequence that needs region 0's memory evicts the whole striped one.
  clock_.Advance(absl::Seconds(2));
  // A page of 64 tokens of 656 bytes takes 11 granules: 704 bytes a token.
  CreateParams big = Params((released.regions[0].free_bytes + released.regions[0].reclaimable_bytes / 2) / 704);
  big.placement_key = 0;
  big.layers = 1;
  auto after = pool_->Create(big);
  ASSERT_TRUE(after.ok()) << after.status();
  const PoolStats evicted = pool_->Stats();
  EXPECT_EQ(evicted.sequences_evicted, 1u);
  EXPECT_EQ(evicted.reclaimable_bytes, 0u) << "every stripe went with it";
}

TEST_F(PoolTest, StripesAreBoundedByTheRegionsAndTheLayers) {
  CreateParams p = Params(100);
  p.stripes = 3;
  auto three = pool_->Create(p);
  EXPECT_TRUE(absl::IsInvalidArgument(three.status())) << three.status();
  EXPECT_THAT(std::string(three.status().message()), HasSubstr("stripes 3 needs as many regions"));
  p.stripes = 2;
  p.layers = 1;
  auto one_layer = pool_->Create(p);
  EXPECT_TRUE(absl::IsInvalidArgument(one_layer.status())) << one_layer.status();
  EXPECT_THAT(std::string(one_layer.status().message()), HasSubstr("above the sequence's 1 layers"));
  // Three layers over two regions: stripe 0 holds layers 0 and 2.
  p.layers = 3;
  auto odd = pool_->Create(p);
  ASSERT_TRUE(odd.ok()) << odd.status();
  EXPECT_EQ(odd->LayerRegion(2).index, odd->region.index);
  EXPECT_NE(odd->LayerRegion(1).index, odd->region.index);
  EXPECT_EQ(pool_->Stats().live_sequences, 1u) << "refused creates leave nothing";
}

// A stripe that finds no room leaves nothing behind in the regions that had room.
TEST_F(PoolTest, AStripedCreateThatDoesNotFitTakesNothing) {
  // Region 0 full but for 1 MiB (a page of 64 tokens of 656 bytes takes 11 granules:
  // 704 bytes a token).
  CreateParams fill = Params((pool_->Stats().regions[0].free_bytes - (1 << 20)) / 704);
  fill.layers = 1;
  fill.placement_key = 0;
  ASSERT_TRUE(pool_->Create(fill).ok());
  const PoolStats before = pool_->Stats();
  CreateParams p = Params(3000);
  p.stripes = 2;
  p.placement_key = 1;
  auto refused = pool_->Create(p);
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("in 2 regions"));
  const PoolStats after = pool_->Stats();
  EXPECT_EQ(after.regions[1].free_bytes, before.regions[1].free_bytes) << "stripe 0 was given back";
  EXPECT_EQ(after.live_sequences, before.live_sequences);
  // A growth that does not fit in one stripe's region grows none.
  p = Params(100);
  p.stripes = 2;
  auto small = pool_->Create(p);
  ASSERT_TRUE(small.ok()) << small.status();
  const PoolStats small_made = pool_->Stats();
  auto too_far = pool_->Extend("client-a", small->sequence_id, 3000);
  ASSERT_TRUE(absl::IsResourceExhausted(too_far.status())) << too_far.status();
  EXPECT_THAT(std::string(too_far.status().message()), HasSubstr("its 2 regions"));
  EXPECT_EQ(pool_->Stats().free_bytes, small_made.free_bytes);
  EXPECT_EQ(pool_->GetLayout("", small->sequence_id)->tokens, 100u);
}

// A striped create is offered a wait only when enough regions could take a stripe once
// their reclaimable memory is reused: here one region holds released memory in its
// grace and the other is full with nothing to reclaim, so it is refused at once.
TEST_F(PoolTest, AStripedCreateIsNotOfferedAWaitThatCannotHelp) {
  CreateParams fill = Params(pool_->Stats().regions[1].free_bytes / 704 - 64);
  fill.layers = 1;
  fill.placement_key = 1;
  ASSERT_TRUE(pool_->Create(fill).ok());
  CreateParams held = Params(pool_->Stats().regions[0].free_bytes / 704 - 64);
  held.layers = 1;
  held.placement_key = 0;
  auto released = pool_->Create(held);
  ASSERT_TRUE(released.ok());
  ASSERT_TRUE(pool_->Release("", released->sequence_id).ok());  // in its grace now
  CreateParams p = Params(2000);
  p.stripes = 2;
  absl::Time retry_at = absl::InfinitePast();
  auto refused = pool_->Create(p, &retry_at);
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("would not make room either"));
  EXPECT_EQ(retry_at, absl::InfinitePast()) << "no retry offered";
  // Unstriped, the same sequence waits for the grace: region 0 will have room.
  p.stripes = 0;
  auto waits = pool_->Create(p, &retry_at);
  ASSERT_TRUE(absl::IsResourceExhausted(waits.status())) << waits.status();
  EXPECT_THAT(std::string(waits.status().message()), HasSubstr("becomes reusable in"));
  EXPECT_NE(retry_at, absl::InfinitePast());
}

// A restart finds a striped sequence whole, owner and all; one with a stripe missing
// (a crash amid its creation) is reclaimed and reported.
TEST_F(PoolTest, StripedSequencesSurviveARestartAndPartialOnesAreFreed) {
  CreateParams p = Params(700, "owner");
  p.stripes = 2;
  auto layout = pool_->Create(p);
  ASSERT_TRUE(layout.ok()) << layout.status();
  Reopen();
  auto after = pool_->GetLayout("", layout->sequence_id);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->page_offsets, layout->page_offsets);
  ASSERT_EQ(after->stripe_regions.size(), 1u);
  EXPECT_EQ(after->stripe_regions[0].uuid, layout->stripe_regions[0].uuid);
  EXPECT_EQ(after->tokens, 700u);
  EXPECT_TRUE(pool_->recovery_problems().empty());
  clock_.Advance(absl::Seconds(11));
  pool_->ExpireLeases();
  EXPECT_TRUE(absl::IsNotFound(pool_->GetLayout("", layout->sequence_id).status()))
      << "the recovered owner's lease covers the whole sequence";

  // Stripe 0 of 2 alone (a crash between the two commits of a create leaves the home):
  // reclaimed like a released sequence, after the grace. Stripe 1 alone and live (the
  // home's region left out): the daemon does not start.
  for (const uint32_t alone : {0u, 1u}) {
    pool_.reset();
    for (const auto& spec : specs_) unlink(spec.path.c_str());
    std::vector<std::unique_ptr<RegionStore>> regions;
    for (const auto& spec : specs_) {
      RecoveryReport report;
      auto store = RegionStore::Open(static_cast<uint32_t>(regions.size()), *MappedRegion::OpenOrCreate(spec), 64, 0,
                                     &report);
      ASSERT_TRUE(store.ok());
      (*store)->PersistIdLimit(100);
      regions.push_back(*std::move(store));
    }
    const uint64_t free_before = regions[1]->free_bytes();
    NewSequence orphan;
    orphan.id = 42;
    orphan.layers = 2;
    orphan.entry_bytes = orphan.entry_stride = 656;
    orphan.page_tokens = 64;
    orphan.tokens = 3000;  // about 4 MiB: the create below cannot fit beside it
    orphan.owner = "gone";
    orphan.stripe_index = alone;
    orphan.stripe_count = 2;
    orphan.sequence_layers = 4;
    ASSERT_TRUE(regions[1]->Create(orphan).ok());
    auto pool = Pool::Open(std::move(regions), PoolOptions(), &clock_);
    if (alone == 1) {
      ASSERT_TRUE(absl::IsFailedPrecondition(pool.status())) << pool.status();
      EXPECT_THAT(std::string(pool.status().message()), HasSubstr("its home record (stripe 0) is in none"));
      continue;
    }
    ASSERT_TRUE(pool.ok()) << pool.status();
    ASSERT_EQ((*pool)->recovery_problems().size(), 1u);
    EXPECT_THAT((*pool)->recovery_problems()[0], HasSubstr("had 1 of its 2 stripes"));
    EXPECT_TRUE(absl::IsNotFound((*pool)->GetLayout("", orphan.id).status()));
    const PoolStats stats = (*pool)->Stats();
    EXPECT_EQ(stats.reclaimable_sequences, 1u);
    EXPECT_EQ(stats.live_sequences, 0u);
    EXPECT_EQ(stats.regions[1].reclaimable_bytes, free_before - stats.regions[1].free_bytes)
        << "reclaimable, not freed on the spot";
    clock_.Advance(absl::Seconds(2));
    CreateParams filler = Params(stats.regions[0].free_bytes / 704 - 64);  // region 0 left no room
    filler.layers = 1;
    filler.placement_key = 0;
    ASSERT_TRUE((*pool)->Create(filler).ok());
    CreateParams big = Params((stats.regions[1].free_bytes + stats.regions[1].reclaimable_bytes / 2) / 704);
    big.layers = 1;
    big.placement_key = 1;
    auto reused = (*pool)->Create(big);
    ASSERT_TRUE(reused.ok()) << reused.status();
    EXPECT_EQ((*pool)->Stats().sequences_evicted, 1u);
  }
}

TEST_F(PoolTest, FullPoolEvictsOldestReclaimableFirstThenRefuses) {
  // Each takes about 40% of a region: two regions hold four.
  std::vector<SequenceId> ids;
  for (int i = 0; i < 4; ++i) {
    auto layout = pool_->Create(Params(2368));
    ASSERT_TRUE(layout.ok()) << i << ": " << layout.status();
    ids.push_back(layout->sequence_id);
    clock_.Advance(absl::Seconds(1));
  }
  auto full = pool_->Create(Params(2368));
  ASSERT_TRUE(absl::IsResourceExhausted(full.status()));
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("needs"));
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("free"));
  ASSERT_TRUE(pool_->Release("", ids[2]).ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(pool_->Release("", ids[0]).ok());
  EXPECT_EQ(pool_->Stats().reclaimable_sequences, 2u);
  ASSERT_TRUE(pool_->Create(Params(2368)).ok());
  // ids[2] was released first, so it went first; ids[0] is still reclaimable.
  EXPECT_THAT(std::string(pool_->GetLayout("", ids[2]).status().message()), HasSubstr("unknown"));
  EXPECT_THAT(std::string(pool_->GetLayout("", ids[0]).status().message()), HasSubstr("released"));
  EXPECT_EQ(pool_->Stats().sequences_evicted, 1u);
  EXPECT_TRUE(pool_->GetLayout("", ids[1]).ok());
  EXPECT_TRUE(pool_->GetLayout("", ids[3]).ok());
}

// A request that even all the memory being reclaimed could not make room for is refused
// at once, not kept waiting for the grace (under churn it would wait to its deadline).
TEST_F(PoolTest, ARequestNoReclaimCanSatisfyIsRefusedWithoutWaiting) {
  std::vector<SequenceId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(pool_->Create(Params(2368))->sequence_id);
  const SequenceId small = pool_->Create(Params(64))->sequence_id;
  ASSERT_TRUE(pool_->Release("", small).ok());  // reclaimable, in its grace, and small
  absl::Time retry_at = absl::InfinitePast();
  auto big = pool_->Create(Params(2368), &retry_at);
  ASSERT_TRUE(absl::IsResourceExhausted(big.status())) << big.status();
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("would not make room either"));
  EXPECT_EQ(retry_at, absl::InfinitePast()) << "no retry offered";
  // Room that the reclaimable memory does make is waited for, as before.
  ASSERT_TRUE(pool_->Release("", ids[0]).ok());
  auto waits = pool_->Create(Params(2368), &retry_at);
  ASSERT_TRUE(absl::IsResourceExhausted(waits.status())) << waits.status();
  EXPECT_THAT(std::string(waits.status().message()), HasSubstr("pool full for now"));
  EXPECT_NE(retry_at, absl::InfinitePast());
}

// Released memory is reused only after the grace: a request that needs it before then
// is refused with ResourceExhausted saying when to come back, and told the time.
TEST_F(PoolTest, ReleasedMemoryIsReusedOnlyAfterTheGrace) {
  std::vector<SequenceId> ids;
  for (int i = 0; i < 4; ++i) {
    auto layout = pool_->Create(Params(2368));
    ASSERT_TRUE(layout.ok()) << i << ": " << layout.status();
    ids.push_back(layout->sequence_id);
  }
  ASSERT_TRUE(pool_->Release("", ids[1]).ok());
  const absl::Time released = clock_.Now();
  clock_.Advance(absl::Milliseconds(300));
  absl::Time retry_at;
  auto early = pool_->Create(Params(2368), &retry_at);
  ASSERT_TRUE(absl::IsResourceExhausted(early.status())) << early.status();
  EXPECT_THAT(std::string(early.status().message()),
              HasSubstr("pool full for now: sequence of 4 layers x 2368 tokens"));
  EXPECT_THAT(std::string(early.status().message()), HasSubstr("becomes reusable in 700ms"));
  EXPECT_EQ(retry_at, released + absl::Seconds(1));
  EXPECT_THAT(std::string(pool_->GetLayout("", ids[1]).status().message()), HasSubstr("released"));
  clock_.Advance(retry_at - clock_.Now());
  auto reused = pool_->Create(Params(2368));
  ASSERT_TRUE(reused.ok()) << reused.status();
  EXPECT_THAT(std::string(pool_->GetLayout("", ids[1]).status().message()), HasSubstr("unknown"));
  EXPECT_EQ(pool_->Stats().sequences_evicted, 1u);

  // The same for a growth that needs the room of a sequence released in its region.
  auto first = pool_->GetLayout("", ids[0]);
  ASSERT_TRUE(first.ok());
  SequenceId neighbour = 0;  // the other live sequence in ids[0]'s region
  for (SequenceId id : {ids[2], ids[3], reused->sequence_id}) {
    auto layout = pool_->GetLayout("", id);
    if (layout.ok() && layout->region.index == first->region.index) neighbour = id;
  }
  ASSERT_NE(neighbour, 0u);
  ASSERT_TRUE(pool_->Release("", neighbour).ok());
  auto refused = pool_->Extend("", ids[0], 4000, &retry_at);
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("growing sequence"));
  EXPECT_EQ(retry_at, clock_.Now() + absl::Seconds(1));
  clock_.Advance(absl::Seconds(1));
  auto grown = pool_->Extend("", ids[0], 4000);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(pool_->Stats().sequences_evicted, 2u);
  // With nothing reclaimable left the answer is the plain one, and no retry time.
  retry_at = absl::InfinitePast();
  auto full = pool_->Create(Params(2368), &retry_at);
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("nothing reclaimable"));
  EXPECT_EQ(retry_at, absl::InfinitePast());
}

// A release time further ahead than the grace (the clock was set back) does not make
// a request wait for it.
TEST_F(PoolTest, AClockSetBackDoesNotHoldReleasedMemory) {
  std::vector<SequenceId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(pool_->Create(Params(2368))->sequence_id);
  ASSERT_TRUE(pool_->Release("", ids[2]).ok());
  clock_.Advance(-absl::Hours(1));
  auto reused = pool_->Create(Params(2368));
  EXPECT_TRUE(reused.ok()) << reused.status();
}

TEST_F(PoolTest, StatsAddUp) {
  auto a = pool_->Create(Params(640));
  auto b = pool_->Create(Params(64));
  ASSERT_TRUE(pool_->Release("", b->sequence_id).ok());
  const PoolStats stats = pool_->Stats();
  EXPECT_EQ(stats.regions.size(), 2u);
  EXPECT_EQ(stats.capacity_bytes, stats.used_bytes + stats.reclaimable_bytes + stats.free_bytes);
  EXPECT_GE(stats.used_bytes, 4u * 10 * 64 * 656);
  EXPECT_GE(stats.reclaimable_bytes, 4u * 64 * 656);
  EXPECT_EQ(stats.sequences_created, 2u);
  auto listed = pool_->List("");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, a->sequence_id);
  EXPECT_EQ(listed[0].owner, "client-a");
  EXPECT_TRUE(pool_->List("other-tenant").empty());
}

TEST_F(PoolTest, RestartKeepsSequencesIdsAndOwnersLeases) {
  const SequenceId a = pool_->Create(Params(300, "a"))->sequence_id;
  const SequenceId b = pool_->Create(Params(300, "b"))->sequence_id;
  ASSERT_TRUE(pool_->Release("", b).ok());
  const SequenceLayout before = *pool_->GetLayout("", a);
  Reopen();
  const SequenceLayout after = *pool_->GetLayout("", a);
  EXPECT_EQ(after.page_offsets, before.page_offsets);
  EXPECT_TRUE(absl::IsNotFound(pool_->GetLayout("", b).status()));
  EXPECT_EQ(pool_->Stats().sequences_recovered, 2u);
  EXPECT_GT(pool_->Create(Params(1))->sequence_id, b);
  // The recovered owner gets one lease timeout to come back.
  clock_.Advance(absl::Seconds(11));
  pool_->ExpireLeases();
  EXPECT_TRUE(absl::IsNotFound(pool_->GetLayout("", a).status()));
}

// Quotas count a tenant's live sequences: growth and creation past them are refused by
// name, a release gives room back, and a restart counts what the regions hold.
TEST_F(PoolTest, TenantQuotasBoundLiveSequencesAndBytesAcrossReleasesAndRestarts) {
  CreateParams p = Params(64, "acme-1");
  p.tenant = "acme";
  p.tenant_scoped = true;
  p.max_sequences = 2;
  p.max_bytes = 3 * RegionStore::DataBytes(4, 64, 656, 1) + (64 << 10);  // three one-page sequences
  const SequenceId first = pool_->Create(p)->sequence_id;
  const SequenceId second = pool_->Create(p)->sequence_id;
  auto third = pool_->Create(p);
  EXPECT_TRUE(absl::IsResourceExhausted(third.status())) << third.status();
  EXPECT_THAT(std::string(third.status().message()), HasSubstr("tenant acme holds 2 live sequences"));
  CreateParams other = Params(64, "globex-1");
  other.tenant = "globex";
  other.tenant_scoped = true;
  other.max_sequences = 2;
  EXPECT_TRUE(pool_->Create(other).ok()) << "one tenant's quota is its own";

  Caller acme("acme-1", "acme", true);
  acme.max_bytes = p.max_bytes;
  auto grown = pool_->Extend(acme, first, 64 * 5);
  EXPECT_TRUE(absl::IsResourceExhausted(grown.status())) << grown.status();
  EXPECT_THAT(std::string(grown.status().message()), HasSubstr("past its quota"));
  EXPECT_EQ(pool_->GetLayout(acme, first)->tokens, 64u) << "a refused growth changed nothing";
  EXPECT_TRUE(pool_->Extend(acme, first, 128).ok()) << "growth within the quota";

  ASSERT_TRUE(pool_->Release(acme, second).ok());
  EXPECT_TRUE(pool_->Create(p).ok()) << "a release gives its room back";
  Reopen();
  auto after_restart = pool_->Create(p);
  EXPECT_TRUE(absl::IsResourceExhausted(after_restart.status()))
      << "a restart forgot what the tenant holds: " << after_restart.status();
}

// One tenant cannot take the lease table: its own limit, or half the table by default.
TEST_F(PoolTest, ATenantsClientLeasesAreBounded) {
  Caller acme("", "acme", true);
  acme.max_clients = 3;
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(absl::StrCat("acme-", i));
  for (int i = 0; i < 3; ++i) {
    acme.client_id = ids[i];
    ASSERT_TRUE(pool_->KeepAlive(acme).ok()) << i;
  }
  acme.client_id = ids[3];
  auto refused = pool_->KeepAlive(acme);
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("tenant acme holds 3 client leases"));
  acme.client_id = ids[0];
  EXPECT_TRUE(pool_->KeepAlive(acme).ok()) << "a client with a lease keeps renewing it";
  EXPECT_TRUE(pool_->KeepAlive(Caller("globex-0", "globex", true)).ok()) << "other tenants are not held back";
  clock_.Advance(absl::Seconds(11));
  pool_->ExpireLeases();
  acme.client_id = ids[3];
  EXPECT_TRUE(pool_->KeepAlive(acme).ok()) << "expired leases give their places back";
}

// A tenant without a sequence quota takes at most half the record slots of the regions
// it shares; the others can still create.
TEST_F(PoolTest, ATenantTakesAtMostHalfTheSharedRecordSlots) {
  CreateParams acme = Params(1, "acme-1");
  acme.tenant = "acme";
  acme.tenant_scoped = true;
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(pool_->Create(acme).ok()) << i;  // 2 regions x 64 slots / 2
  auto refused = pool_->Create(acme);
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("half the record slots of the regions it shares"));
  CreateParams globex = Params(1, "globex-1");
  globex.tenant = "globex";
  globex.tenant_scoped = true;
  EXPECT_TRUE(pool_->Create(globex).ok()) << "another tenant still finds a record";
  acme.max_sequences = 100;  // a quota of its own replaces the default
  EXPECT_TRUE(pool_->Create(acme).ok());
}

// Stripes take a record slot each: the default bound counts slots, not sequences.
TEST_F(PoolTest, StripesCountAgainstTheDefaultShareOfRecordSlots) {
  CreateParams acme = Params(1, "acme-1");
  acme.tenant = "acme";
  acme.tenant_scoped = true;
  acme.stripes = 2;
  for (int i = 0; i < 32; ++i) ASSERT_TRUE(pool_->Create(acme).ok()) << i;  // 64 slots: half of 2 x 64
  auto refused = pool_->Create(acme);
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("holds 64 record slots (32 live sequences"));
  acme.stripes = 0;
  EXPECT_TRUE(absl::IsResourceExhausted(pool_->Create(acme).status())) << "one more slot is past the share too";
  CreateParams globex = Params(1, "globex-1");
  globex.tenant = "globex";
  globex.tenant_scoped = true;
  globex.stripes = 2;
  EXPECT_TRUE(pool_->Create(globex).ok()) << "another tenant still finds records";
}

// A region dedicated to a tenant holds only that tenant's sequences, and that tenant's
// sequences live only in its regions, even when a shared region has room.
TEST_F(PoolTest, DedicatedRegionsHoldOnlyTheirTenantsSequences) {
  region_tenants_ = {{"acme"}, {}};
  Reopen();
  CreateParams acme = Params(64, "acme-1");
  acme.tenant = "acme";
  acme.tenant_scoped = true;
  CreateParams globex = Params(64, "globex-1");
  globex.tenant = "globex";
  globex.tenant_scoped = true;
  for (int i = 0; i < 3; ++i) {
    auto a = pool_->Create(acme);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->region.index, 0u) << "acme's sequences live in its own region";
    auto g = pool_->Create(globex);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(g->region.index, 1u) << "other tenants live in the shared region";
  }
  // Fill acme's region: the shared region's room is not acme's.
  CreateParams big = acme;
  big.tokens = 4096;
  absl::Status refused;
  for (int i = 0; i < 1000 && refused.ok(); ++i) {
    auto a = pool_->Create(big);
    if (a.ok()) {
      EXPECT_EQ(a->region.index, 0u);
    } else {
      refused = a.status();
    }
  }
  ASSERT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("1 region(s) serving tenant \"acme\""));
  CreateParams big_globex = big;
  big_globex.client_id = "globex-1";
  big_globex.tenant = "globex";
  auto g = pool_->Create(big_globex);
  ASSERT_TRUE(g.ok()) << "the shared region had room all along: " << g.status();
  EXPECT_EQ(g->region.index, 1u);
  EXPECT_EQ(pool_->access().DomainOf("acme"), std::optional<size_t>(1));
  EXPECT_EQ(pool_->access().DomainOf("globex"), std::optional<size_t>(0));
  EXPECT_EQ(pool_->access().DomainFor("globex", 0), std::optional<size_t>(1))
      << "an operator looking at acme's sequence gets acme's domain";
}

// A restart with a region's tenants changed under sequences it holds refuses to start,
// naming the region, the sequence and its tenant: other tenants could map their pages.
TEST_F(PoolTest, RefusesRegionsHoldingOtherTenantsSequences) {
  CreateParams globex = Params(64, "globex-1");
  globex.tenant = "globex";
  auto layout = pool_->Create(globex);
  ASSERT_TRUE(layout.ok()) << layout.status();
  region_tenants_ = {{"acme"}, {"acme"}};
  auto refused = OpenPool();
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("holds sequence ", layout->sequence_id, " of tenant \"globex\"")));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("dedicated to acme"));
  region_tenants_ = {};
  Reopen();
  EXPECT_TRUE(pool_->GetLayout("globex-1", layout->sequence_id).ok()) << "nothing was lost";
  // Released, it is no obstacle: erased at the start, its bytes gone with it.
  ASSERT_TRUE(pool_->Release("globex-1", layout->sequence_id).ok());
  region_tenants_ = {{"acme"}, {"acme"}};
  Reopen();
  EXPECT_EQ(pool_->Stats().reclaimable_sequences, 0u);
  EXPECT_EQ(pool_->Stats().used_bytes + pool_->Stats().reclaimable_bytes, 0u);
}

TEST_F(PoolTest, ATenantWithoutARegionIsToldSo) {
  region_tenants_ = {{"acme"}, {"acme", "initech"}};
  Reopen();
  CreateParams globex = Params(64, "globex-1");
  globex.tenant = "globex";
  globex.tenant_scoped = true;
  auto refused = pool_->Create(globex);
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("no region serves tenant \"globex\""));
  CreateParams initech = Params(64, "initech-1");
  initech.tenant = "initech";
  auto placed = pool_->Create(initech);
  ASSERT_TRUE(placed.ok()) << placed.status();
  EXPECT_EQ(placed->region.index, 1u);
  // Domains: acme reaches {0,1}, initech {1}: two sets, two domains.
  EXPECT_EQ(pool_->access().domains().size(), 2u);
}

// A scoped caller acts on its tenant's sequences and client ids only.
TEST_F(PoolTest, ScopedCallersStayInTheirTenant) {
  CreateParams p = Params(64, "acme-1");
  p.tenant = "acme";
  p.tenant_scoped = true;
  const SequenceId id = pool_->Create(p)->sequence_id;
  const Caller globex("globex-1", "globex", true);
  for (absl::Status s : {pool_->GetLayout(globex, id).status(), pool_->Extend(globex, id, 100).status(),
                         pool_->Release(globex, id), pool_->Adopt(globex, id).status()}) {
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  }
  const Caller thief("acme-1", "globex", true);
  EXPECT_TRUE(absl::IsPermissionDenied(pool_->KeepAlive(thief).status()));
  EXPECT_TRUE(pool_->GetLayout(Caller("acme-2", "acme", true), id).ok());
  EXPECT_TRUE(pool_->GetLayout("", id).ok()) << "unscoped callers (no tenants, operators) reach everything";
}

TEST_F(PoolTest, AdoptionMovesASequenceToTheAdoptersLeaseAndSurvivesARestart) {
  const SequenceId handed = pool_->Create(Params(100, "prefill"))->sequence_id;
  const SequenceId kept = pool_->Create(Params(100, "prefill"))->sequence_id;
  auto adopted = pool_->Adopt("decode", handed);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(adopted->sequence_id, handed);
  EXPECT_EQ(pool_->KeepAlive("decode")->sequences, 1u);
  EXPECT_EQ(pool_->KeepAlive("prefill")->sequences, 1u);
  EXPECT_TRUE(pool_->Adopt("decode", handed).ok()) << "adopting again is a no-op";
  const auto listed = pool_->List("");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].owner, "decode");
  // The owner is in the region: a restarted daemon keeps the adopter's lease.
  Reopen();
  // Only the decode worker renews; the prefill worker is gone.
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Seconds(6));
    ASSERT_TRUE(pool_->KeepAlive("decode").ok());
    pool_->ExpireLeases();
  }
  EXPECT_TRUE(pool_->GetLayout("", handed).ok());
  auto lost = pool_->GetLayout("", kept);
  EXPECT_TRUE(absl::IsNotFound(lost.status()));
  EXPECT_THAT(std::string(lost.status().message()), HasSubstr("lease of its owner \"prefill\" expired"));
}

TEST_F(PoolTest, AdoptionNeedsAnOwnerAndALiveSequence) {
  const SequenceId id = pool_->Create(Params(10))->sequence_id;
  EXPECT_THAT(std::string(pool_->Adopt("", id).status().message()), HasSubstr("needs a client_id"));
  EXPECT_TRUE(absl::IsInvalidArgument(pool_->Adopt(std::string(100, 'c'), id).status()));
  EXPECT_TRUE(absl::IsNotFound(pool_->Adopt("decode", 424242).status()));
  ASSERT_TRUE(pool_->Release("", id).ok());
  EXPECT_THAT(std::string(pool_->Adopt("decode", id).status().message()), HasSubstr("was released"));
  EXPECT_EQ(pool_->KeepAlive("decode")->sequences, 0u) << "a failed adoption takes nothing";
}

// Several threads creating, growing, releasing and adopting at once, in regions small
// enough that pages are reused all the time: reused pages are zeroed outside the pool
// lock, so this checks that creates, growths, releases and adoptions interleave safely.
// Each thread writes a pattern into its own sequences' pages; pages a create or growth
// hands out must read as zero. Afterwards no page is shared, the stats add up, and a
// restart finds the same sequences.
TEST_F(PoolTest, ConcurrentRequestsNeverShareOrLeakPages) {
  std::vector<std::unique_ptr<MappedRegion>> views;
  for (const auto& spec : specs_) {
    auto view = MappedRegion::Attach(RegionKind::kShm, spec.path, spec.size_bytes);
    ASSERT_TRUE(view.ok()) << view.status();
    views.push_back(std::make_unique<MappedRegion>(*std::move(view)));
  }
  absl::Mutex mu;
  std::vector<SequenceId> known;  // every id any thread created
  std::atomic<int> dirty_pages{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      const std::string me = absl::StrCat("client-", t);
      std::vector<SequenceId> mine;
      auto fill = [&](const SequenceLayout& l, uint32_t from_page) {
        for (uint32_t layer = 0; layer < l.layers; ++layer) {
          for (uint32_t page = from_page; page < l.pages_per_layer; ++page) {
            std::memset(views[l.region.index]->base() + l.page_offsets[size_t{layer} * l.pages_per_layer + page],
                        0xAB, l.PageBytes());
          }
        }
      };
      for (int op = 0; op < 1500; ++op) {
        // Time passes, so that released memory leaves its reuse grace now and then.
        if (rng() % 8 == 0) clock_.Advance(absl::Milliseconds(300));
        const uint64_t r = rng() % 10;
        if (r < 3 || mine.empty()) {
          auto layout = pool_->Create(Params(rng() % 2000, me));
          if (!layout.ok()) continue;  // full: others hold the memory
          bool zero = true;
          for (uint64_t offset : layout->page_offsets) {
            zero = zero && views[layout->region.index]->base()[offset] == std::byte{0};
          }
          if (!zero) ++dirty_pages;
          fill(*layout, 0);
          mine.push_back(layout->sequence_id);
          absl::MutexLock lock(&mu);
          known.push_back(layout->sequence_id);
        } else if (r < 7) {
          const SequenceId id = mine[rng() % mine.size()];
          auto before = pool_->GetLayout(me, id);
          if (!before.ok()) continue;
          auto after = pool_->Extend(me, id, before->tokens + rng() % 1500);
          if (!after.ok()) continue;
          for (uint32_t layer = 0; layer < after->layers; ++layer) {
            for (uint32_t page = before->pages_per_layer; page < after->pages_per_layer; ++page) {
              const uint64_t offset = after->page_offsets[size_t{layer} * after->pages_per_layer + page];
              if (views[after->region.index]->base()[offset] != std::byte{0}) ++dirty_pages;
            }
          }
          fill(*after, before->pages_per_layer);
        } else if (r < 9) {
          // Only the thread that writes a sequence releases it: a write racing a release
          // is the one hazard the pool cannot rule out (see docs/architecture.md).
          const size_t i = rng() % mine.size();
          ASSERT_TRUE(pool_->Release(me, mine[i]).ok());
          mine.erase(mine.begin() + i);
        } else {
          SequenceId id;
          {
            absl::MutexLock lock(&mu);
            id = known[rng() % known.size()];
          }
          (void)pool_->Adopt(me, id);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(dirty_pages.load(), 0);

  std::map<SequenceId, SequenceLayout> live;
  std::set<std::pair<uint32_t, uint64_t>> pages;
  for (const SequenceSummary& summary : pool_->List("")) {
    auto layout = pool_->GetLayout("", summary.id);
    ASSERT_TRUE(layout.ok()) << layout.status();
    for (uint64_t offset : layout->page_offsets) {
      ASSERT_TRUE(pages.insert({layout->region.index, offset}).second) << "a page shared by two sequences";
    }
    live[summary.id] = *layout;
  }
  const PoolStats stats = pool_->Stats();
  EXPECT_EQ(stats.capacity_bytes, stats.used_bytes + stats.reclaimable_bytes + stats.free_bytes);
  EXPECT_EQ(stats.live_sequences, live.size());
  EXPECT_GT(stats.sequences_evicted, 0u) << "the regions were small enough to reuse pages";
  Reopen();
  for (const auto& [id, layout] : live) {
    auto recovered = pool_->GetLayout("", id);
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    EXPECT_EQ(recovered->tokens, layout.tokens);
    EXPECT_EQ(recovered->page_offsets, layout.page_offsets);
  }
  EXPECT_EQ(pool_->List("").size(), live.size());
}

TEST_F(PoolTest, KeepAliveNeedsAValidClientId) {
  EXPECT_TRUE(absl::IsInvalidArgument(pool_->KeepAlive("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(pool_->KeepAlive(std::string(100, 'c')).status()));
}

}  // namespace

// The id of a released sequence whose memory went to another is never issued again,
// not even after a restart, when it was the highest id the pool had issued: a client
// still holding its layout would otherwise read the new sequence's entries.
TEST_F(PoolTest, IdsOfEvictedSequencesAreNeverIssuedAgainAfterARestart) {
  std::vector<SequenceLayout> layouts;
  for (int i = 0; i < 4; ++i) {
    auto layout = pool_->Create(Params(2368));
    ASSERT_TRUE(layout.ok()) << i << ": " << layout.status();
    layouts.push_back(*layout);
  }
  const SequenceLayout& newest = layouts[3];
  SequenceId neighbour = 0;  // a live sequence in the newest one's region
  for (int i = 0; i < 3; ++i) {
    if (layouts[i].region.index == newest.region.index) neighbour = layouts[i].sequence_id;
  }
  ASSERT_NE(neighbour, 0u);
  ASSERT_TRUE(pool_->Release("", newest.sequence_id).ok());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(pool_->Extend("", neighbour, 4000).ok());  // takes the released memory
  ASSERT_EQ(pool_->Stats().sequences_evicted, 1u);
  Reopen();
  for (int i = 0; i < 3; ++i) {
    auto created = pool_->Create(Params(1));
    ASSERT_TRUE(created.ok()) << created.status();
    EXPECT_GT(created->sequence_id, newest.sequence_id);
  }
}

// Two records with one id (regions of two pools put together, or a forged record):
// which one a layout meant cannot be known, so the pool does not open, naming both.
TEST_F(PoolTest, TwoRecordsWithOneIdKeepThePoolFromOpening) {
  pool_.reset();
  std::vector<std::unique_ptr<RegionStore>> regions;
  for (const auto& spec : specs_) {
    RecoveryReport report;
    auto store = RegionStore::Open(static_cast<uint32_t>(regions.size()), *MappedRegion::OpenOrCreate(spec), 64,
                                   0, &report);
    ASSERT_TRUE(store.ok());
    (*store)->PersistIdLimit(100);
    NewSequence seq;
    seq.id = 42;
    seq.layers = 1;
    seq.entry_bytes = seq.entry_stride = 656;
    seq.page_tokens = 64;
    seq.tokens = 1;
    ASSERT_TRUE((*store)->Create(seq).ok());
    regions.push_back(*std::move(store));
  }
  auto pool = Pool::Open(std::move(regions), PoolOptions(), &clock_);
  ASSERT_TRUE(absl::IsFailedPrecondition(pool.status())) << pool.status();
  EXPECT_THAT(std::string(pool.status().message()), HasSubstr("sequence id 42 is held by two records"));
  EXPECT_THAT(std::string(pool.status().message()), HasSubstr(specs_[0].path));
  EXPECT_THAT(std::string(pool.status().message()), HasSubstr(specs_[1].path));
}


// Release fencing: memory released at epoch e is reused only once every fenced client
// has acknowledged e (no write of its begun before it learned of e is in flight), or
// has lost its lease; the grace still applies too.
TEST_F(PoolTest, ReleasedMemoryWaitsForEveryFencedClientsAcknowledgement) {
  Pool::FenceReport fresh;  // incarnation 0: has written nothing yet
  auto writer = pool_->KeepAlive("writer", &fresh);
  ASSERT_TRUE(writer.ok());
  const uint64_t incarnation = writer->current.incarnation;
  EXPECT_NE(incarnation, 0u);
  ASSERT_TRUE(pool_->KeepAlive("reader", &fresh).ok());
  std::vector<SequenceId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(pool_->Create(Params(2368, "writer"))->sequence_id);
  ASSERT_TRUE(pool_->Release("writer", ids[1]).ok());
  const ReleaseEpoch released = pool_->release_epoch();
  EXPECT_EQ(released.epoch, writer->current.epoch + 1);
  clock_.Advance(absl::Seconds(2));  // past the grace: only acknowledgements are missing

  absl::Time retry_at;
  auto waiting = pool_->Create(Params(2368, "other"), &retry_at);
  ASSERT_TRUE(absl::IsResourceExhausted(waiting.status())) << waiting.status();
  EXPECT_THAT(std::string(waiting.status().message()), HasSubstr("2 fenced connection(s) confirm"));
  EXPECT_EQ(retry_at, clock_.Now() + kAcknowledgementPoll);

  // An acknowledgement of another daemon incarnation counts for nothing.
  Pool::FenceReport stale{ReleaseEpoch{incarnation + 1, released.epoch}};
  EXPECT_FALSE(pool_->KeepAlive("writer", &stale)->reuse_unblocked);
  // One of two: still waiting, and the message names the one that holds it back.
  Pool::FenceReport acknowledged{released};
  EXPECT_FALSE(pool_->KeepAlive("writer", &acknowledged)->reuse_unblocked);
  waiting = pool_->Create(Params(2368, "other"));
  EXPECT_THAT(std::string(waiting.status().message()), HasSubstr("\"reader\""));
  // An acknowledgement beyond the pool's epoch counts only up to it.
  Pool::FenceReport ahead{ReleaseEpoch{incarnation, released.epoch + 100}};
  EXPECT_TRUE(pool_->KeepAlive("reader", &ahead)->reuse_unblocked);
  ASSERT_TRUE(pool_->Create(Params(2368, "other")).ok());
  EXPECT_EQ(pool_->Stats().sequences_evicted, 1u);

  // A fenced client that goes silent holds released memory only until its lease runs out.
  ASSERT_TRUE(pool_->Release("writer", ids[2]).ok());
  clock_.Advance(absl::Seconds(2));
  for (const char* alive : {"writer", "other"}) ASSERT_TRUE(pool_->KeepAlive(alive).ok());
  Pool::FenceReport writer_ack{pool_->release_epoch()};
  ASSERT_TRUE(pool_->KeepAlive("writer", &writer_ack).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(pool_->Create(Params(2368, "other")).status()));
  clock_.Advance(absl::Seconds(9));
  ASSERT_TRUE(pool_->KeepAlive("writer").ok());
  ASSERT_TRUE(pool_->KeepAlive("other").ok());
  ASSERT_EQ(pool_->ExpireLeases().size(), 1u);  // "reader"
  EXPECT_TRUE(pool_->Create(Params(2368, "other")).ok());
}

// A client that closes (nothing in flight) stops holding released memory at once; its
// lease, and the sequences it owns, stay until the lease runs out (a hand-off).
TEST_F(PoolTest, AClosingClientNoLongerHoldsReleasedMemory) {
  Pool::FenceReport fresh;
  ASSERT_TRUE(pool_->KeepAlive("writer", &fresh).ok());
  ASSERT_TRUE(pool_->KeepAlive("prefill", &fresh).ok());
  std::vector<SequenceId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(pool_->Create(Params(2368, "writer"))->sequence_id);
  const SequenceId handed_off = pool_->Create(Params(64, "prefill"))->sequence_id;
  ASSERT_TRUE(pool_->Release("writer", ids[1]).ok());
  clock_.Advance(absl::Seconds(2));
  Pool::FenceReport writer_ack{pool_->release_epoch()};
  ASSERT_TRUE(pool_->KeepAlive("writer", &writer_ack).ok());
  auto waiting = pool_->Create(Params(2368, "other"));
  ASSERT_TRUE(absl::IsResourceExhausted(waiting.status())) << waiting.status();
  EXPECT_THAT(std::string(waiting.status().message()), HasSubstr("\"prefill\""));

  Pool::FenceReport closing;
  closing.closing = true;
  auto closed = pool_->KeepAlive("prefill", &closing);
  ASSERT_TRUE(closed.ok());
  EXPECT_TRUE(closed->reuse_unblocked) << "the waiting create is asked again at once";
  EXPECT_TRUE(pool_->Create(Params(2368, "other")).ok());
  EXPECT_TRUE(pool_->GetLayout("decode", handed_off).ok()) << "its sequence waits for a hand-off";
  EXPECT_TRUE(pool_->Adopt("decode", handed_off).ok());
}

// One client id, two connections (a cluster client replacing its connection to a
// restarted node): each is fenced apart. The old connection closing, or acknowledging,
// does not speak for the new one's writes in flight; a connection that dies without
// closing stops holding memory after the lease timeout though the lease lives on.
TEST_F(PoolTest, EachConnectionOfAClientIsFencedApart) {
  Pool::FenceReport old_connection;
  old_connection.session = 1;
  Pool::FenceReport new_connection;
  new_connection.session = 2;
  ASSERT_TRUE(pool_->KeepAlive("worker", &old_connection).ok());
  ASSERT_TRUE(pool_->KeepAlive("worker", &new_connection).ok());
  std::vector<SequenceId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(pool_->Create(Params(2368, "worker"))->sequence_id);
  ASSERT_TRUE(pool_->Release("worker", ids[1]).ok());
  clock_.Advance(absl::Seconds(2));  // past the grace

  Pool::FenceReport old_acknowledges{pool_->release_epoch()};
  old_acknowledges.session = 1;
  EXPECT_FALSE(pool_->KeepAlive("worker", &old_acknowledges)->reuse_unblocked);
  Pool::FenceReport old_closes;
  old_closes.session = 1;
  old_closes.closing = true;
  EXPECT_FALSE(pool_->KeepAlive("worker", &old_closes)->reuse_unblocked);
  auto waiting = pool_->Create(Params(2368, "other"));
  ASSERT_TRUE(absl::IsResourceExhausted(waiting.status())) << "the new connection has not acknowledged";
  EXPECT_THAT(std::string(waiting.status().message()), HasSubstr("1 fenced connection(s)"));

  Pool::FenceReport new_acknowledges{pool_->release_epoch()};
  new_acknowledges.session = 2;
  EXPECT_TRUE(pool_->KeepAlive("worker", &new_acknowledges)->reuse_unblocked);
  EXPECT_TRUE(pool_->Create(Params(2368, "other")).ok());

  // A third connection goes silent; the lease, renewed by the second, lives on.
  Pool::FenceReport silent;
  silent.session = 3;
  ASSERT_TRUE(pool_->KeepAlive("worker", &silent).ok());
  ASSERT_TRUE(pool_->Release("worker", ids[2]).ok());
  clock_.Advance(absl::Seconds(2));
  new_acknowledges.acknowledged = pool_->release_epoch();
  ASSERT_TRUE(pool_->KeepAlive("worker", &new_acknowledges).ok());
  ASSERT_TRUE(pool_->KeepAlive("other").ok());
  EXPECT_TRUE(absl::IsResourceExhausted(pool_->Create(Params(2368, "other")).status()));
  EXPECT_FALSE(pool_->DropStaleFences()) << "not silent for a lease timeout yet";
  clock_.Advance(absl::Seconds(9));
  ASSERT_TRUE(pool_->KeepAlive("worker", &new_acknowledges).ok());
  ASSERT_TRUE(pool_->KeepAlive("other").ok());
  EXPECT_TRUE(pool_->ExpireLeases().empty());
  EXPECT_TRUE(pool_->DropStaleFences());
  EXPECT_TRUE(pool_->Create(Params(2368, "other")).ok());
}

// Fence sessions are a client's connections, not a number it can grow by naming new ones.
TEST_F(PoolTest, AClientsFenceSessionsAreBounded) {
  for (uint64_t session = 1; session <= LeaseTable::kMaxFenceSessions; ++session) {
    Pool::FenceReport report;
    report.session = session;
    ASSERT_TRUE(pool_->KeepAlive("worker", &report).ok()) << session;
  }
  Pool::FenceReport one_more;
  one_more.session = LeaseTable::kMaxFenceSessions + 1;
  auto refused = pool_->KeepAlive("worker", &one_more);
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("16 fenced connections"));
  Pool::FenceReport closing;
  closing.session = 1;
  closing.closing = true;
  ASSERT_TRUE(pool_->KeepAlive("worker", &closing).ok());
  EXPECT_TRUE(pool_->KeepAlive("worker", &one_more).ok()) << "room again once one closed";
}

// After a restart, sequences released before it wait for the acknowledgement of every
// client that comes back fenced: a write it began under the old daemon may still land.
TEST_F(PoolTest, MemoryReleasedBeforeARestartWaitsForReturningClients) {
  Pool::FenceReport fresh;
  const uint64_t old_incarnation = pool_->KeepAlive("writer", &fresh)->current.incarnation;
  std::vector<SequenceId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(pool_->Create(Params(2368, "writer"))->sequence_id);
  ASSERT_TRUE(pool_->Release("writer", ids[0]).ok());
  const ReleaseEpoch before = pool_->release_epoch();
  Reopen();
  clock_.Advance(absl::Seconds(2));
  const ReleaseEpoch after = pool_->release_epoch();
  EXPECT_NE(after.incarnation, old_incarnation);
  EXPECT_EQ(after.epoch, 1u) << "the recovered released sequence took the first epoch";
  // The client comes back naming what it acknowledged of the old daemon.
  Pool::FenceReport returning{before};
  auto back = pool_->KeepAlive("writer", &returning);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(pool_->Create(Params(2368, "other")).status()));
  Pool::FenceReport acknowledged{after};
  EXPECT_TRUE(pool_->KeepAlive("writer", &acknowledged)->reuse_unblocked);
  EXPECT_TRUE(pool_->Create(Params(2368, "other")).ok());
}


// Client ids are checked on every call, and a request that fails leaves no lease
// behind: made-up ids cannot grow the lease table (eight 50 MB ids grew a daemon by
// 393 MiB before). Past max_leases, new clients are refused.
TEST_F(PoolTest, ClientIdsAreBoundedAndFailedRequestsLeaveNoLease) {
  const SequenceId id = pool_->Create(Params(10, "owner"))->sequence_id;
  const std::string huge(50 << 20, 'x');
  EXPECT_TRUE(absl::IsInvalidArgument(pool_->GetLayout(huge, id).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(pool_->Extend(huge, id, 20).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(pool_->Release(huge, id)));
  EXPECT_EQ(pool_->Stats().leases, 1u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(absl::IsNotFound(pool_->GetLayout(absl::StrCat("ghost-", i), id + 1000).status()));
  }
  EXPECT_EQ(pool_->Stats().leases, 1u) << "requests that failed took no lease";
  EXPECT_TRUE(pool_->GetLayout("reader", id).ok());
  EXPECT_EQ(pool_->Stats().leases, 2u);
}

TEST_F(PoolTest, NewClientsAreRefusedWhenTheLeaseTableIsFull) {
  pool_.reset();
  std::vector<std::unique_ptr<RegionStore>> regions;
  for (const auto& spec : specs_) {
    RecoveryReport report;
    regions.push_back(*RegionStore::Open(static_cast<uint32_t>(regions.size()), *MappedRegion::OpenOrCreate(spec),
                                         64, 0, &report));
  }
  PoolOptions options;
  options.max_leases = 3;
  options.lease_timeout = absl::Seconds(10);
  pool_ = *Pool::Open(std::move(regions), options, &clock_);
  for (const char* client : {"a", "b", "c"}) ASSERT_TRUE(pool_->KeepAlive(client).ok());
  auto refused = pool_->Create(Params(10, "d"));
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("lease table is full: 3 clients"));
  EXPECT_TRUE(pool_->Create(Params(10, "a")).ok()) << "clients that hold a lease go on";
  clock_.Advance(absl::Seconds(11));
  ASSERT_TRUE(pool_->KeepAlive("a").ok());
  pool_->ExpireLeases();
  EXPECT_TRUE(pool_->Create(Params(10, "d")).ok()) << "room again once leases expired";
}

}  // namespace sparsepool
