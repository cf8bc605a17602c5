// The load workers' ledger: what it records, that it round-trips through its file, and
// that a damaged file is refused rather than read as something else.
#include "bench/load_ledger.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool::bench {
namespace {

using ::testing::HasSubstr;

std::vector<std::byte> Bytes(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(seed + i * 7);
  return v;
}

TEST(LoadLedgerTest, ChecksumsExtendTokenByTokenAsOverTheWholeLayer) {
  LoadLedger ledger("load-worker-0-1");
  ledger.Created(7, 2, 4);
  // A prompt of 3 tokens in 2 layers ([layers][n][entry_bytes]), then one more token.
  const std::vector<std::byte> prompt = Bytes(2 * 3 * 4, 1);
  const std::vector<std::byte> next = Bytes(2 * 1 * 4, 50);
  ASSERT_TRUE(ledger.Committed(7, 3, prompt).ok());
  ASSERT_TRUE(ledger.Committed(7, 1, next).ok());
  const LedgerSequence& s = ledger.sequences().at(7);
  EXPECT_EQ(s.committed_tokens, 4u);
  for (uint32_t layer = 0; layer < 2; ++layer) {
    // What a reader computes over the layer's 4 tokens read back in one piece.
    std::vector<std::byte> whole(prompt.begin() + layer * 12, prompt.begin() + layer * 12 + 12);
    whole.insert(whole.end(), next.begin() + layer * 4, next.begin() + layer * 4 + 4);
    EXPECT_EQ(s.layer_crc[layer], LayerChecksum(whole)) << "layer " << layer;
  }
  EXPECT_NE(s.layer_crc[0], s.layer_crc[1]);
}

TEST(LoadLedgerTest, CommitsOfTheWrongSizeOrUnknownSequencesAreRefused) {
  LoadLedger ledger("w");
  ledger.Created(7, 2, 4);
  absl::Status short_commit = ledger.Committed(7, 1, Bytes(4, 0));
  EXPECT_TRUE(absl::IsInvalidArgument(short_commit));
  EXPECT_THAT(short_commit.message(), HasSubstr("1 tokens of 2 layers take 8"));
  EXPECT_EQ(ledger.sequences().at(7).committed_tokens, 0u) << "nothing recorded from a refused commit";
  EXPECT_TRUE(absl::IsInvalidArgument(ledger.Committed(8, 1, Bytes(8, 0))));
}

TEST(LoadLedgerTest, IntentionsAreRecordedBeforeTheCallsAndRoundTrip) {
  LoadLedger ledger("load-worker-3-99");
  ledger.BeginCreate();
  ledger.EndCreate(LoadLedger::CreateOutcome::kAnswerLost);  // the daemon died during the call
  ledger.BeginCreate();
  ledger.EndCreate(LoadLedger::CreateOutcome::kRefused);  // the pool was full: nothing made
  ledger.BeginCreate();
  ledger.EndCreate(LoadLedger::CreateOutcome::kCreated);
  ledger.Created(11, 3, 8);
  ASSERT_TRUE(ledger.Committed(11, 2, Bytes(3 * 2 * 8, 9)).ok());
  ledger.Created(12, 3, 8);
  ledger.Releasing(12);
  ledger.BeginCreate();  // stopped here: a create in flight
  EXPECT_EQ(ledger.lost_creates(), 1u);
  EXPECT_EQ(ledger.creates_in_flight(), 1u);

  absl::StatusOr<LoadLedger> back = LoadLedger::Parse(ledger.Serialize());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->client_id(), "load-worker-3-99");
  EXPECT_EQ(back->lost_creates(), 1u);
  EXPECT_EQ(back->creates_in_flight(), 1u);
  ASSERT_EQ(back->sequences().size(), 2u);
  EXPECT_EQ(back->sequences().at(11).committed_tokens, 2u);
  EXPECT_EQ(back->sequences().at(11).layer_crc, ledger.sequences().at(11).layer_crc);
  EXPECT_FALSE(back->sequences().at(11).releasing);
  EXPECT_TRUE(back->sequences().at(12).releasing);
  back->Released(12);
  EXPECT_EQ(back->sequences().size(), 1u);
}

TEST(LoadLedgerTest, SavedAtomicallyAndLoadedBack) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/ledger");
  LoadLedger ledger("w");
  ledger.Created(5, 1, 2);
  ASSERT_TRUE(ledger.Committed(5, 1, Bytes(2, 3)).ok());
  ASSERT_TRUE(ledger.Save(path).ok());
  ASSERT_TRUE(ledger.Committed(5, 1, Bytes(2, 4)).ok());
  ASSERT_TRUE(ledger.Save(path).ok());
  absl::StatusOr<LoadLedger> back = LoadLedger::Load(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->sequences().at(5).committed_tokens, 2u);
  EXPECT_TRUE(absl::IsNotFound(LoadLedger::Load(path + ".missing").status()));
}

TEST(LoadLedgerTest, DamagedLedgersAreRefusedNamingTheLine) {
  LoadLedger ledger("w");
  ledger.Created(5, 2, 2);
  const std::string good = ledger.Serialize();
  struct Case {
    std::string text;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"", "first line"},
      {"sparsepool-load-ledger v2\n", "first line"},
      {absl::StrReplaceAll(good, {{"seq 5 2 2 0 live 0 0", "seq 5 2 2 0 live 0"}}), "checksum count"},
      {absl::StrReplaceAll(good, {{" live ", " gone "}}), "unknown state"},
      {absl::StrReplaceAll(good, {{"seq 5 2", "seq x 2"}}), "bad number"},
      {good + "seq 5 2 2 0 live 0 0\n", "named twice"},
      {good + "what 1\n", "unknown line"},
      {absl::StrReplaceAll(good, {{"lost_creates 0", "lost_creates -1"}}), "bad count"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<LoadLedger> parsed = LoadLedger::Parse(c.text);
    EXPECT_TRUE(absl::IsDataLoss(parsed.status())) << c.text;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.why)) << c.text;
  }
}

}  // namespace
}  // namespace sparsepool::bench
