#include "service/pool.h"

#include <unistd.h>

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
    pool_.reset();
    std::vector<std::unique_ptr<RegionStore>> regions;
    for (const auto& spec : specs_) {
      RecoveryReport report;
      auto store = RegionStore::Open(static_cast<uint32_t>(regions.size()),
                                     *MappedRegion::OpenOrCreate(spec), 64, 0, &report);
      ASSERT_TRUE(store.ok()) << store.status();
      regions.push_back(*std::move(store));
    }
    PoolOptions options;
    options.lease_timeout = absl::Seconds(10);
    pool_ = std::make_unique<Pool>(std::move(regions), options, &clock_);
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
  EXPECT_EQ(*pool_->KeepAlive("b"), 1u);
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

TEST_F(PoolTest, AdoptionMovesASequenceToTheAdoptersLeaseAndSurvivesARestart) {
  const SequenceId handed = pool_->Create(Params(100, "prefill"))->sequence_id;
  const SequenceId kept = pool_->Create(Params(100, "prefill"))->sequence_id;
  auto adopted = pool_->Adopt("decode", handed);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_EQ(adopted->sequence_id, handed);
  EXPECT_EQ(*pool_->KeepAlive("decode"), 1u);
  EXPECT_EQ(*pool_->KeepAlive("prefill"), 1u);
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
  EXPECT_EQ(*pool_->KeepAlive("decode"), 0u) << "a failed adoption takes nothing";
}

TEST_F(PoolTest, KeepAliveNeedsAValidClientId) {
  EXPECT_TRUE(absl::IsInvalidArgument(pool_->KeepAlive("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(pool_->KeepAlive(std::string(100, 'c')).status()));
}

}  // namespace
}  // namespace sparsepool
