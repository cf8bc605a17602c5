// The load tool's check after a fault, against a real daemon: a pool that holds what
// the ledgers say passes; a changed byte, a lost sequence and a sequence no ledger
// explains are each reported, naming the sequence.
#include "bench/load_check.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon_process.h"

namespace sparsepool::bench {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kLayers = 2;
constexpr uint32_t kEntryBytes = 16;
constexpr uint64_t kTokens = 100;

class LoadCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start().ok()) << daemon_.Log();
    ClientOptions options;
    options.address = daemon_.address();
    auto client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    workers_.push_back(LoadWorkerLedger{0, LoadLedger(client_->client_id()), true});
  }

  // A sequence of this client, written and recorded in the ledger of worker 0.
  SequenceId Written(uint8_t seed) {
    SequenceSpec spec;
    spec.layers = kLayers;
    spec.entry_bytes = kEntryBytes;
    spec.tokens = kTokens;
    auto id = client_->CreateSequence(spec);
    EXPECT_TRUE(id.ok()) << id.status();
    std::vector<std::byte> entries(kLayers * kTokens * kEntryBytes);
    for (size_t i = 0; i < entries.size(); ++i) entries[i] = static_cast<std::byte>(seed + i * 13);
    for (uint32_t layer = 0; layer < kLayers; ++layer) {
      const uint64_t layer_bytes = kTokens * kEntryBytes;
      EXPECT_TRUE(client_->WriteEntries(*id, layer, 0, absl::MakeSpan(entries).subspan(layer * layer_bytes, layer_bytes))
                      .ok());
    }
    LoadLedger& ledger = workers_[0].ledger;
    ledger.Created(*id, kLayers, kEntryBytes);
    EXPECT_TRUE(ledger.Committed(*id, kTokens, entries).ok());
    return *id;
  }

  LoadCheckReport Check() {
    absl::StatusOr<LoadCheckReport> report =
        CheckPoolAgainstLedgers(daemon_.address(), absl::Seconds(5), *client_, workers_);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : LoadCheckReport{};
  }

  testing::DaemonProcess daemon_{"load-check"};
  std::unique_ptr<Client> client_;
  std::vector<LoadWorkerLedger> workers_;
};

TEST_F(LoadCheckTest, APoolHoldingWhatTheLedgersSayPasses) {
  Written(1);
  Written(2);
  const LoadCheckReport report = Check();
  EXPECT_TRUE(report.clean()) << report.Summary();
  EXPECT_EQ(report.sequences_checked, 2u);
  EXPECT_EQ(report.bytes_checked, 2 * kLayers * kTokens * kEntryBytes);
}

TEST_F(LoadCheckTest, AChangedEntryIsReportedWithItsSequenceAndLayer) {
  const SequenceId id = Written(1);
  std::vector<std::byte> other(kEntryBytes, std::byte{0x5a});
  ASSERT_TRUE(client_->WriteEntries(id, 1, 37, other).ok());  // behind the ledger's back
  const LoadCheckReport report = Check();
  ASSERT_EQ(report.problems.size(), 1u) << report.Summary();
  EXPECT_THAT(report.problems[0], HasSubstr(absl::StrCat("sequence ", id, " of worker 0 layer 1")));
  EXPECT_THAT(report.problems[0], HasSubstr("differ from what was written"));
}

TEST_F(LoadCheckTest, ASequenceGoneFromThePoolIsLostUnlessReleasedOrItsWorkerDied) {
  const SequenceId id = Written(1);
  ASSERT_TRUE(client_->ReleaseSequence(id).ok());
  LoadCheckReport report = Check();
  ASSERT_EQ(report.problems.size(), 1u) << report.Summary();
  EXPECT_THAT(report.problems[0], HasSubstr(absl::StrCat("sequence ", id, " of worker 0 (100 tokens acknowledged) is gone")));
  // Asked to release: no problem.
  workers_[0].ledger.Releasing(id);
  EXPECT_TRUE(Check().clean());
  // A killed worker's sequence, reclaimed: counted, no problem.
  const SequenceId second = Written(2);
  ASSERT_TRUE(client_->ReleaseSequence(second).ok());
  workers_[0].alive = false;
  report = Check();
  EXPECT_TRUE(report.clean()) << report.Summary();
  EXPECT_EQ(report.reclaimed, 1u);
}

TEST_F(LoadCheckTest, APoolSequenceOfAWorkerInNoLineIsExplainedOnlyByACreateInFlightOrLost) {
  Written(1);
  SequenceSpec spec;
  spec.layers = kLayers;
  spec.entry_bytes = kEntryBytes;
  spec.tokens = kTokens;
  auto stray = client_->CreateSequence(spec);  // the ledger never hears of it
  ASSERT_TRUE(stray.ok());
  LoadCheckReport report = Check();
  ASSERT_EQ(report.problems.size(), 1u) << report.Summary();
  EXPECT_THAT(report.problems[0], HasSubstr(absl::StrCat("sequence ", *stray, " of worker 0 is live in the pool but in no line")));
  workers_[0].ledger.BeginCreate();  // the worker was stopped during that create
  report = Check();
  EXPECT_TRUE(report.clean()) << report.Summary();
  EXPECT_EQ(report.unledgered, 1u);
  // Sequences of clients that are not load workers are not the check's business.
  workers_[0].ledger = LoadLedger("someone-else");
  EXPECT_TRUE(Check().clean());
}

TEST_F(LoadCheckTest, ASequenceShorterThanItsLedgerIsReported) {
  const SequenceId id = Written(1);
  // The ledger claims a token the pool never had room for.
  ASSERT_TRUE(workers_[0].ledger.Committed(id, 100, std::vector<std::byte>(kLayers * 100 * kEntryBytes)).ok());
  const LoadCheckReport report = Check();
  ASSERT_EQ(report.problems.size(), 1u) << report.Summary();
  EXPECT_THAT(report.problems[0], HasSubstr("its ledger says 2, 16 and at least 200"));
}

TEST(LoadCheckNoDaemonTest, AnUnreachablePoolIsAnErrorNotAReport) {
  testing::DaemonProcess daemon("load-check-gone");
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  ClientOptions options;
  options.address = daemon.address();
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  daemon.Kill();
  absl::StatusOr<LoadCheckReport> report = CheckPoolAgainstLedgers(daemon.address(), absl::Seconds(1), **client, {});
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr(absl::StrCat("ListSequences to ", daemon.address())));
}

}  // namespace
}  // namespace sparsepool::bench
