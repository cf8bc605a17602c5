// The decode session end to end: a real daemon, sequences written by "prefill" through
// the client, a step captured once in a CUDA graph and replayed while contexts grow and
// rows join and leave; every delivered entry is compared with the pattern written, and
// the pool is read back through the CPU path. Skips without a CUDA device (CI); runs on
// the device machine (tools/gpu_check.sh).
#include "client/decode_session.h"

#include <cuda_runtime.h>
#include <unistd.h>

#include <numeric>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/entry_pattern.h"
#include "client/client_internal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cuda_assert.h"
#include "tests/daemon_process.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kLayers = 3;
constexpr uint32_t kEntry = 656;
constexpr uint32_t kK = 128;
constexpr uint32_t kBatch = 4;
constexpr uint64_t kSeed = 77;

class DecodeSessionTest : public ::testing::TestWithParam<uint32_t /*cache_slots*/> {
 protected:
  void SetUp() override {
    auto regions = GpuRegionRegistry::Create();
    if (!regions.ok()) GTEST_SKIP() << regions.status().message() << ": GPU tests run on the device machine";
    regions_ = *std::move(regions);
    daemon_options_.region_size = "512MiB";
    ASSERT_NO_FATAL_FAILURE(StartDaemonAndConnect(
        absl::StrCat("decode-session-", GetParam(), "-", ::testing::UnitTest::GetInstance()->current_test_info()->name()),
        daemon_options_));
    CUDA_OK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUDA_OK(cudaMalloc(&d_topk_, kLayers * kBatch * kK * sizeof(int32_t)));
    CUDA_OK(cudaMalloc(&d_new_, kLayers * kBatch * kEntry));
  }
  void TearDown() override {
    session_.reset();
    if (graph_exec_ != nullptr) cudaGraphExecDestroy(graph_exec_);
    if (d_topk_ != nullptr) cudaFree(d_topk_);
    if (d_new_ != nullptr) cudaFree(d_new_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    client_.reset();
    daemon_.reset();
    if (!second_region_.empty()) unlink(second_region_.c_str());
  }

  DecodeSessionOptions Options() const {
    DecodeSessionOptions o;
    o.max_batch = kBatch;
    o.layers = kLayers;
    o.entry_bytes = kEntry;
    o.k = kK;
    o.max_tokens = 4096;
    o.cache_slots = GetParam();
    o.buffers = kLayers;  // every layer's delivery stays readable after the step
    o.reserve_tokens = 200;
    return o;
  }

  // A sequence whose first `tokens` tokens the "prefill" wrote.
  SequenceId Prefill(uint64_t tokens, uint32_t stripes = 0) {
    SequenceSpec spec;
    spec.layers = kLayers;
    spec.entry_bytes = kEntry;
    spec.tokens = tokens;
    spec.stripes = stripes;
    auto id = client_->CreateSequence(spec);
    EXPECT_TRUE(id.ok()) << id.status();
    std::vector<std::byte> entries(tokens * kEntry);
    for (uint32_t layer = 0; layer < kLayers; ++layer) {
      for (uint64_t t = 0; t < tokens; ++t) {
        bench::FillEntry(kSeed, *id, layer, t, absl::MakeSpan(entries).subspan(t * kEntry, kEntry));
      }
      EXPECT_TRUE(client_->WriteEntries(*id, layer, 0, entries).ok());
    }
    return *id;
  }

  // One step's whole work, captured once: new entries written, then every layer fetched.
  void Capture() {
    CUDA_OK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal));
    ASSERT_TRUE(session_->BeginStep(stream_).ok());
    for (uint32_t layer = 0; layer < kLayers; ++layer) {
      ASSERT_TRUE(session_->WriteLayer(layer, d_new_ + layer * kBatch * kEntry, stream_).ok());
      ASSERT_TRUE(session_->FetchLayer(layer, d_topk_ + layer * kBatch * kK, stream_).ok());
    }
    ASSERT_TRUE(session_->EndStep(stream_).ok());
    cudaGraph_t graph = nullptr;
    CUDA_OK(cudaStreamEndCapture(stream_, &graph));
    CUDA_OK(cudaGraphInstantiate(&graph_exec_, graph, 0));
    CUDA_OK(cudaGraphDestroy(graph));
  }

  // Stages this step's inputs (the new token's entries, a random top-k that may pick
  // the new token), replays the graph, and checks every delivered entry but the new
  // token of `released_row`: a write-back reads the sequence's record first and writes
  // nothing into a released sequence, so that token is not there to deliver (the row is
  // reported by the next PrepareStep).
  void StepAndCheck(std::mt19937_64& rng, std::vector<DecodeSession::RowFailure>* failures,
                    std::optional<uint32_t> released_row = std::nullopt) {
    ASSERT_TRUE(session_->PrepareStep(stream_, failures).ok());
    std::vector<int32_t> topk(kLayers * kBatch * kK, -1);
    std::vector<std::byte> fresh(kLayers * kBatch * kEntry);
    for (uint32_t row = 0; row < kBatch; ++row) {
      if (!session_->active(row)) continue;
      const uint64_t tokens = session_->tokens(row);  // after this step: its new token is tokens - 1
      for (uint32_t layer = 0; layer < kLayers; ++layer) {
        bench::FillEntry(kSeed, session_->sequence(row), layer, tokens - 1,
                         absl::MakeSpan(fresh).subspan((layer * kBatch + row) * kEntry, kEntry));
        int32_t* selection = topk.data() + (layer * kBatch + row) * kK;
        for (uint32_t i = 0; i < kK; ++i) {
          selection[i] = rng() % 9 == 0 ? -1 : static_cast<int32_t>(rng() % tokens);
        }
        selection[rng() % kK] = static_cast<int32_t>(tokens - 1);  // the token this step writes
        // The cache takes each token once per row: later copies become padding.
        std::sort(selection, selection + kK);
        for (uint32_t i = kK - 1; i > 0; --i) {
          if (selection[i] >= 0 && selection[i] == selection[i - 1]) selection[i] = -1;
        }
        std::shuffle(selection, selection + kK, rng);
      }
    }
    CUDA_OK(cudaMemcpyAsync(d_topk_, topk.data(), topk.size() * 4, cudaMemcpyHostToDevice, stream_));
    CUDA_OK(cudaMemcpyAsync(d_new_, fresh.data(), fresh.size(), cudaMemcpyHostToDevice, stream_));
    CUDA_OK(cudaGraphLaunch(graph_exec_, stream_));
    CUDA_OK(cudaStreamSynchronize(stream_));
    std::vector<int32_t> flat(kBatch * kK);
    std::vector<std::byte> expected(kEntry), delivered;
    for (uint32_t layer = 0; layer < kLayers; ++layer) {
      const DecodeSession::Delivery d = session_->delivered(layer);
      CUDA_OK(cudaMemcpy(flat.data(), d.flat_indices, flat.size() * 4, cudaMemcpyDeviceToHost));
      delivered.resize(d.entry_count * kEntry);
      CUDA_OK(cudaMemcpy(delivered.data(), d.entries, delivered.size(), cudaMemcpyDeviceToHost));
      for (uint32_t row = 0; row < kBatch; ++row) {
        for (uint32_t i = 0; i < kK; ++i) {
          const int32_t token = session_->active(row) ? topk[(layer * kBatch + row) * kK + i] : -1;
          const int32_t index = flat[row * kK + i];
          if (token < 0) {
            ASSERT_EQ(index, -1) << "row " << row << " position " << i;
            continue;
          }
          ASSERT_GE(index, 0);
          ASSERT_LT(static_cast<uint64_t>(index), d.entry_count);
          if (released_row == row && static_cast<uint64_t>(token) + 1 == session_->tokens(row)) continue;
          bench::FillEntry(kSeed, session_->sequence(row), layer, token, absl::MakeSpan(expected));
          ASSERT_EQ(std::memcmp(delivered.data() + uint64_t(index) * kEntry, expected.data(), kEntry), 0)
              << "layer " << layer << " row " << row << " token " << token;
        }
      }
    }
  }

  void StartDaemonAndConnect(const std::string& name, const testing::DaemonOptions& options) {
    daemon_ = std::make_unique<testing::DaemonProcess>(name, options);
    ASSERT_TRUE(daemon_->Start().ok()) << daemon_->Log();
    ClientOptions client_options;
    client_options.address = daemon_->address();
    auto client = Client::Connect(client_options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  // The daemon again, with a second region (for striped sequences), removed at the end.
  void RestartWithASecondRegion() {
    second_region_ = absl::StrCat("/dev/shm/sparsepool-test-decode-second-", GetParam(), "-", getpid());
    unlink(second_region_.c_str());
    client_.reset();
    daemon_.reset();
    testing::DaemonOptions options = daemon_options_;
    options.extra_args.push_back(absl::StrCat("--region=shm:", second_region_, ":256MiB"));
    ASSERT_NO_FATAL_FAILURE(StartDaemonAndConnect(absl::StrCat("decode-session-striped-", GetParam()), options));
  }

  testing::DaemonOptions daemon_options_;
  std::string second_region_;  // removed by the destructor when set
  std::unique_ptr<testing::DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<GpuRegionRegistry> regions_;
  std::unique_ptr<DecodeSession> session_;
  cudaStream_t stream_ = nullptr;
  cudaGraphExec_t graph_exec_ = nullptr;
  int32_t* d_topk_ = nullptr;
  std::byte* d_new_ = nullptr;
};

// One graph, captured once, replayed for 400 steps: contexts grow across many pages and
// reservations, a row leaves and another sequence takes its place mid-way, and every
// delivered entry (prefill's and the steps' own) is the one written.
TEST_P(DecodeSessionTest, ACapturedStepReplaysAcrossGrowingContextsAndChangingBatches) {
  auto session = DecodeSession::Create(client_.get(), regions_.get(), Options());
  ASSERT_TRUE(session.ok()) << session.status();
  session_ = *std::move(session);
  for (uint64_t tokens : {300, 64, 1000}) {
    auto row = session_->Join(Prefill(tokens), tokens, stream_);
    ASSERT_TRUE(row.ok()) << row.status();
  }
  ASSERT_NO_FATAL_FAILURE(Capture());
  std::mt19937_64 rng(3);
  std::vector<DecodeSession::RowFailure> failures;
  for (int step = 0; step < 400; ++step) {
    if (step == 150) {
      ASSERT_TRUE(session_->Leave(1, stream_).ok());
      auto row = session_->Join(Prefill(130), 130, stream_);
      ASSERT_TRUE(row.ok()) << row.status();
    }
    ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures)) << "step " << step;
    for (const auto& failure : failures) ADD_FAILURE() << "row " << failure.row << ": " << failure.status;
    failures.clear();
  }
  // The appended tokens are in the pool for every reader: the CPU path sees them too.
  const SequenceId grown = session_->sequence(0);
  std::vector<int32_t> last = {static_cast<int32_t>(session_->tokens(0) - 1), 300};
  std::vector<std::byte> out(2 * kEntry), expected(kEntry);
  ASSERT_TRUE(client_->FetchTopK(2, {grown}, last, absl::MakeSpan(out)).ok());
  for (int i = 0; i < 2; ++i) {
    bench::FillEntry(kSeed, grown, 2, last[i], absl::MakeSpan(expected));
    EXPECT_EQ(std::memcmp(out.data() + i * kEntry, expected.data(), kEntry), 0) << "token " << last[i];
  }
}

// Sequences whose layers are striped over two regions decode beside one that is not:
// each layer is gathered from, and its new token written to, its stripe's region
// inside the captured step; a release is caught through the home region's record.
TEST_P(DecodeSessionTest, StripedSequencesDecodeInTheCapturedStep) {
  ASSERT_NO_FATAL_FAILURE(RestartWithASecondRegion());
  auto session = DecodeSession::Create(client_.get(), regions_.get(), Options());
  ASSERT_TRUE(session.ok()) << session.status();
  session_ = *std::move(session);
  for (auto [tokens, stripes] : {std::pair<uint64_t, uint32_t>{300, 2}, {500, 0}, {90, 2}}) {
    auto row = session_->Join(Prefill(tokens, stripes), tokens, stream_);
    ASSERT_TRUE(row.ok()) << row.status();
  }
  auto layout = internal::Layout(*client_, session_->sequence(0));
  ASSERT_TRUE(layout.ok());
  ASSERT_EQ(layout->stripes(), 2u);
  ASSERT_NE(layout->LayerRegion(0).path, layout->LayerRegion(1).path);
  ASSERT_NO_FATAL_FAILURE(Capture());
  std::mt19937_64 rng(5);
  std::vector<DecodeSession::RowFailure> failures;
  for (int step = 0; step < 150; ++step) {
    ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures)) << "step " << step;
    for (const auto& failure : failures) ADD_FAILURE() << "row " << failure.row << ": " << failure.status;
    failures.clear();
  }
  // The steps' own tokens are in each stripe's region for the CPU path too.
  const SequenceId striped = session_->sequence(0);
  std::vector<int32_t> last = {static_cast<int32_t>(session_->tokens(0) - 1)};
  std::vector<std::byte> out(kEntry), expected(kEntry);
  for (uint32_t layer = 0; layer < kLayers; ++layer) {
    ASSERT_TRUE(client_->FetchTopK(layer, {striped}, last, absl::MakeSpan(out)).ok());
    bench::FillEntry(kSeed, striped, layer, last[0], absl::MakeSpan(expected));
    EXPECT_EQ(std::memcmp(out.data(), expected.data(), kEntry), 0) << "layer " << layer;
  }
  // Released by another client: reported by the next PrepareStep, the others go on.
  ClientOptions other_options;
  other_options.address = daemon_->address();
  auto other = Client::Connect(other_options);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->ReleaseSequence(session_->sequence(2)).ok());
  ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures, 2u));
  EXPECT_TRUE(failures.empty());
  ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures));
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].row, 2u);
  EXPECT_TRUE(absl::IsNotFound(failures[0].status)) << failures[0].status;
  EXPECT_TRUE(session_->active(0)) << "the other striped row goes on";
}

// A sequence released by another client while the session decodes it is reported by
// the next PrepareStep and leaves the session; the other rows go on.
TEST_P(DecodeSessionTest, ASequenceReleasedUnderTheSessionIsReportedAndLeaves) {
  auto session = DecodeSession::Create(client_.get(), regions_.get(), Options());
  ASSERT_TRUE(session.ok()) << session.status();
  session_ = *std::move(session);
  const SequenceId kept = Prefill(200), doomed = Prefill(200);
  ASSERT_TRUE(session_->Join(kept, 200, stream_).ok());
  auto doomed_row = session_->Join(doomed, 200, stream_);
  ASSERT_TRUE(doomed_row.ok());
  ASSERT_NO_FATAL_FAILURE(Capture());
  std::mt19937_64 rng(4);
  std::vector<DecodeSession::RowFailure> failures;
  ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures));
  ClientOptions other_options;
  other_options.address = daemon_->address();
  auto other = Client::Connect(other_options);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->ReleaseSequence(doomed).ok());
  // The step after the release sees it at its end (its pages are not reused meanwhile:
  // the step holds the release fence, so the entries it reads are still the sequence's;
  // its new token's write-back wrote nothing); the next PrepareStep reports it and the
  // row leaves.
  ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures, *doomed_row));
  EXPECT_TRUE(failures.empty());
  ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures));
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].row, *doomed_row);
  EXPECT_TRUE(absl::IsNotFound(failures[0].status)) << failures[0].status;
  EXPECT_FALSE(session_->active(*doomed_row));
  failures.clear();
  ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures));
  EXPECT_TRUE(failures.empty());
}

// A reservation refused (the pool full) while the row still has room costs the row
// nothing: it steps on, asking again (every 100 ms at most, then each step as its room
// runs low), and leaves only when its room runs out, with the reservation's own error.
// Once the pool has room it joins again where it was.
TEST_P(DecodeSessionTest, ARowWhoseReservationFailsStepsOnUntilItsRoomRunsOut) {
  auto session = DecodeSession::Create(client_.get(), regions_.get(), Options());
  ASSERT_TRUE(session.ok()) << session.status();
  session_ = *std::move(session);
  const SequenceId id = Prefill(100);
  auto row = session_->Join(id, 100, stream_);  // room for 300: reserve_tokens 200
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_NO_FATAL_FAILURE(Capture());
  // Everything else the pool holds, taken by another client.
  ClientOptions filler_options;
  filler_options.address = daemon_->address();
  auto filler = Client::Connect(filler_options);
  ASSERT_TRUE(filler.ok());
  std::vector<SequenceId> filling;
  for (uint64_t tokens = uint64_t{1} << 20; tokens >= 64;) {
    SequenceSpec spec;
    spec.layers = kLayers;
    spec.entry_bytes = kEntry;
    spec.tokens = tokens;
    auto made = (*filler)->CreateSequence(spec);
    if (made.ok()) {
      filling.push_back(*made);
      continue;
    }
    ASSERT_TRUE(absl::IsResourceExhausted(made.status())) << made.status();
    tokens /= 2;
  }
  ASSERT_FALSE(filling.empty());
  std::mt19937_64 rng(8);
  std::vector<DecodeSession::RowFailure> failures;
  // Its next reservation is due at 200 tokens and refused; it steps on to 300.
  int steps = 0;
  while (failures.empty() && steps < 400) {
    ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures)) << "step " << steps;
    ++steps;
  }
  ASSERT_EQ(failures.size(), 1u);
  // 200 steps fill its room for 300 tokens (the pool may round it up to its pages);
  // the step after finds none.
  EXPECT_GE(steps, 201) << "the row left while it had room";
  EXPECT_EQ(failures[0].row, *row);
  EXPECT_EQ(failures[0].sequence, id);
  EXPECT_TRUE(absl::IsResourceExhausted(failures[0].status)) << failures[0].status;
  EXPECT_THAT(std::string(failures[0].status.message()), HasSubstr("reserving it failed"));
  EXPECT_FALSE(session_->active(*row)) << "out of room, it left";
  const uint64_t tokens = 100 + steps - 1;  // the step that found no room appended nothing
  for (SequenceId f : filling) ASSERT_TRUE((*filler)->ReleaseSequence(f).ok());
  // Released memory is reused once every fenced client acknowledged it (the lease
  // loop's next call): the join may be refused until then.
  absl::StatusOr<uint32_t> again = absl::UnavailableError("not yet");
  for (const absl::Time give_up = absl::Now() + absl::Seconds(30); absl::Now() < give_up;) {
    again = session_->Join(id, tokens, stream_);
    if (!absl::IsResourceExhausted(again.status())) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(again.ok()) << again.status();
  failures.clear();
  for (int step = 0; step < 50; ++step) ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures)) << "step " << step;
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(session_->tokens(*again), tokens + 50);
}

// A client with a fetch rate holds the captured step to it: PrepareStep books every
// active row's top-k of every layer the step fetches (what the GPU reads from the pool
// outside the client's own copies), and the steps still deliver every entry.
TEST_P(DecodeSessionTest, AClientsFetchRateHoldsTheCapturedStepsToIt) {
  // Two rows of 300 tokens: each step books 2 x 128 entries in each of 3 layers; at
  // ten steps' worth a second, each step waits 100 ms for the one before it.
  constexpr uint64_t kStepBytes = 2 * kK * kLayers * kEntry;
  ClientOptions paced_options;
  paced_options.address = daemon_->address();
  paced_options.fetch_bytes_per_second = kStepBytes * 10;
  auto paced = Client::Connect(paced_options);
  ASSERT_TRUE(paced.ok()) << paced.status();
  client_ = *std::move(paced);
  auto session = DecodeSession::Create(client_.get(), regions_.get(), Options());
  ASSERT_TRUE(session.ok()) << session.status();
  session_ = *std::move(session);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(session_->Join(Prefill(300), 300, stream_).ok());
  ASSERT_NO_FATAL_FAILURE(Capture());
  std::mt19937_64 rng(6);
  std::vector<DecodeSession::RowFailure> failures;
  const absl::Time start = absl::Now();
  for (int step = 0; step < 5; ++step) ASSERT_NO_FATAL_FAILURE(StepAndCheck(rng, &failures)) << "step " << step;
  EXPECT_TRUE(failures.empty());
  // The first step goes at once; the four after it wait for the one before (1 ms of
  // tolerance each).
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(4 * 100 - 4));
  EXPECT_GT(client_->Metrics().fetch_paced_seconds, 0.0);  // the waits counted
}

// Bad input: a top-k index past a row's tokens is reported (InvalidArgument, naming the
// sequence), never read; bad options and shapes are refused naming the value.
TEST_P(DecodeSessionTest, BadIndicesAndShapesAreReported) {
  DecodeSessionOptions bad = Options();
  bad.k = 0;
  EXPECT_THAT(std::string(DecodeSession::Create(client_.get(), regions_.get(), bad).status().message()),
              HasSubstr("k 0 is out of range"));
  auto session = DecodeSession::Create(client_.get(), regions_.get(), Options());
  ASSERT_TRUE(session.ok());
  session_ = *std::move(session);
  SequenceSpec other_shape;
  other_shape.layers = 2;
  other_shape.entry_bytes = kEntry;
  other_shape.tokens = 10;
  auto mismatched = client_->CreateSequence(other_shape);
  ASSERT_TRUE(mismatched.ok());
  EXPECT_THAT(std::string(session_->Join(*mismatched, 10, stream_).status().message()), HasSubstr("has 2 layers"));
  const SequenceId id = Prefill(100);
  ASSERT_TRUE(session_->Join(id, 100, stream_).ok());
  ASSERT_NO_FATAL_FAILURE(Capture());
  std::vector<DecodeSession::RowFailure> failures;
  ASSERT_TRUE(session_->PrepareStep(stream_, &failures).ok());
  std::vector<int32_t> topk(kLayers * kBatch * kK, -1);
  topk[kBatch * kK + 5] = 4000;  // layer 1, row 0: past the row's 101 tokens
  CUDA_OK(cudaMemcpy(d_topk_, topk.data(), topk.size() * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaGraphLaunch(graph_exec_, stream_));
  CUDA_OK(cudaStreamSynchronize(stream_));
  ASSERT_TRUE(session_->PrepareStep(stream_, &failures).ok());
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(absl::IsInvalidArgument(failures[0].status)) << failures[0].status;
  EXPECT_THAT(std::string(failures[0].status.message()), HasSubstr("token index 4000"));
  EXPECT_TRUE(session_->active(0)) << "a bad index is the engine's error: the row stays";
}

// Joins and leaves allocate nothing: device memory stays flat over 10,000 of them.
TEST_P(DecodeSessionTest, JoinsAndLeavesLeakNothing) {
  auto session = DecodeSession::Create(client_.get(), regions_.get(), Options());
  ASSERT_TRUE(session.ok());
  session_ = *std::move(session);
  const SequenceId id = Prefill(64);
  size_t free_before = 0, free_after = 0, total = 0;
  ASSERT_TRUE(session_->Join(id, 64, stream_).ok());
  ASSERT_TRUE(session_->Leave(0, stream_).ok());
  CUDA_OK(cudaStreamSynchronize(stream_));
  CUDA_OK(cudaMemGetInfo(&free_before, &total));
  for (int i = 0; i < 10000; ++i) {
    auto row = session_->Join(id, 64, stream_);
    ASSERT_TRUE(row.ok()) << row.status();
    ASSERT_TRUE(session_->Leave(*row, stream_).ok());
  }
  CUDA_OK(cudaStreamSynchronize(stream_));
  CUDA_OK(cudaMemGetInfo(&free_after, &total));
  EXPECT_EQ(free_after, free_before);
}

INSTANTIATE_TEST_SUITE_P(CacheOrNot, DecodeSessionTest, ::testing::Values(0u, 256u),
                         [](const ::testing::TestParamInfo<uint32_t>& info) {
                           return info.param == 0 ? std::string("plain_gather") : std::string("residency_cache");
                         });

}  // namespace
}  // namespace sparsepool
