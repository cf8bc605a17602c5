// sparsepool-bench's parts: the model file, one sweep cell per strategy against a real
// daemon (UCX over tcp for the RDMA strategies), the bytes each strategy reports
// against hand-computed counts, and the report outputs.
#include <cstdlib>

#include "absl/strings/str_format.h"

#include "bench/bench_report.h"
#include "bench/bench_runner.h"
#include "bench/gpu_strategies.h"
#include "bench/host_strategies.h"
#include "bench/model_geometry.h"
#include "bench/entry_pattern.h"
#include "bench/prefix_fetch.h"
#include "bench/prefix_pull.h"
#include "bench/request_run.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon_process.h"
#include "tests/ucx_loopback.h"

namespace sparsepool::bench {
namespace {

using ::testing::HasSubstr;

TEST(ModelGeometryTest, DefaultsAreDeepSeekAndFileOverrides) {
  auto model = ParseModelGeometry("# a smaller model\nname = tiny\nlayers = 3\nentry_bytes=584\n", "tiny.conf");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->name, "tiny");
  EXPECT_EQ(model->layers, 3u);
  EXPECT_EQ(model->entry_bytes, 584u);
  EXPECT_EQ(model->top_k, 2048u);  // unset: DeepSeek-V3.2's
  EXPECT_EQ(model->index_key_bytes, 132u);
  EXPECT_EQ(model->page_tokens, 64u);
}

TEST(ModelGeometryTest, ShippedDefaultFileParses) {
  auto model = ReadModelGeometry("bench/models/deepseek_v3_2.conf");
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelGeometry defaults;
  EXPECT_EQ(model->layers, defaults.layers);
  EXPECT_EQ(model->entry_bytes, defaults.entry_bytes);
  EXPECT_EQ(model->index_key_bytes, defaults.index_key_bytes);
  EXPECT_EQ(model->top_k, defaults.top_k);
}

TEST(ModelGeometryTest, BadFilesNameLineAndValue) {
  EXPECT_THAT(std::string(ParseModelGeometry("layers = 0\n", "m.conf").status().message()),
              HasSubstr("m.conf:1: layers = \"0\" is not a whole number in [1, 1024]"));
  EXPECT_THAT(std::string(ParseModelGeometry("\nheads = 128\n", "m.conf").status().message()),
              HasSubstr("m.conf:2: unknown key \"heads\""));
  EXPECT_THAT(std::string(ParseModelGeometry("top_k 2048\n", "m.conf").status().message()),
              HasSubstr("expected KEY = VALUE"));
  EXPECT_TRUE(absl::IsNotFound(ReadModelGeometry("/nonexistent.conf").status()));
}

class BenchCellTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::UseUcxOnLoopback();
    testing::DaemonOptions options;
    options.region_size = "512MiB";
    options.extra_args = {"--ucx=true"};
    daemon_ = new testing::DaemonProcess("bench_test", options);
    ASSERT_TRUE(daemon_->Start().ok()) << daemon_->Log();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }

  std::unique_ptr<Client> Connect(const std::string& transport) {
    ClientOptions options;
    options.address = daemon_->address();
    options.transport = transport;
    auto client = Client::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // A small model so that a cell runs in well under a second.
  static CellPlan Plan() {
    CellPlan plan;
    plan.model.layers = 6;
    plan.model.top_k = 256;
    plan.context = 1000;  // not a multiple of the page: the last page is partly used
    plan.batch = 3;
    plan.warmup_steps = 1;
    plan.steps = 4;
    plan.sampled_layers = 3;
    plan.stored_layers = 2;
    plan.checked_per_row = 64;
    return plan;
  }

  static testing::DaemonProcess* daemon_;
};

testing::DaemonProcess* BenchCellTest::daemon_ = nullptr;

TEST_F(BenchCellTest, EveryHostStrategyDeliversWhatWasWrittenAndCountsItsBytes) {
  auto prefill = Connect("cxl");
  const CellPlan plan = Plan();
  const double topk_bytes_per_step = 3.0 * 256 * 656 * 6;  // rows x k x entry x all 6 layers (scaled)
  struct Case {
    std::unique_ptr<FetchStrategy> strategy;
    double expected_bytes_per_step;  // 0: checked separately
  };
  std::vector<Case> cases;
  cases.push_back({MakeClientFetch("cxl-cpu-topk", Connect("cxl"), false), topk_bytes_per_step});
  cases.push_back({MakeClientFetch("rdma-topk", Connect("ucx"), false), topk_bytes_per_step});
  // Full prefix: every row's whole context, which grows by one token a step: the timed
  // steps see 1001..1004 tokens (mean 1002.5).
  cases.push_back({MakeClientFetch("rdma-full-prefix", Connect("ucx"), true), 3.0 * 1002.5 * 656 * 6});
  cases.push_back({MakeHostCacheFetch("cxl-cpu-topk-cache", Connect("cxl"), 512), 0});
  for (Case& c : cases) {
    SCOPED_TRACE(c.strategy->name());
    auto result = RunCell(plan, *prefill, *c.strategy, [](const std::string&) {});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->strategy, c.strategy->name());
    EXPECT_EQ(result->layers_fetched, 3u);
    EXPECT_DOUBLE_EQ(result->scale, 2.0);
    EXPECT_GT(result->entries_checked, 4u * 3 * 50);  // most checks land on a real index
    EXPECT_GT(result->fetch_p50_s, 0);
    EXPECT_GE(result->fetch_p99_s, result->fetch_p50_s);
    EXPECT_GT(result->steps_per_s, 0);
    if (c.expected_bytes_per_step > 0) {
      EXPECT_DOUBLE_EQ(result->link_bytes_per_step, c.expected_bytes_per_step);
    } else {
      // The cache: the trace keeps 80% of each step's top-k, so after the warm-up step
      // most of it hits and far fewer bytes cross than top-k without the cache.
      EXPECT_LT(result->link_bytes_per_step, 0.4 * topk_bytes_per_step);
      EXPECT_GT(result->link_bytes_per_step, 0);
    }
  }
}

// The RDMA baseline as the field runs it: the whole prefix crosses once, at admission
// (every stored layer of every row, scaled to the model's layers), and the steps
// gather from the local copy, moving nothing; every checked entry is what was written.
TEST_F(BenchCellTest, ThePrefixPullMovesThePrefixOnceAndNothingPerStep) {
  auto prefill = Connect("cxl");
  const CellPlan plan = Plan();
  auto strategy = MakePrefixPullFetch("rdma-prefix-pull", Connect("ucx"));
  auto result = RunCell(plan, *prefill, *strategy, [](const std::string&) {});
  ASSERT_TRUE(result.ok()) << result.status();
  // rows x prefix tokens x entry x stored layers, scaled by layers / stored (6 / 2).
  EXPECT_DOUBLE_EQ(result->admission_bytes, 3.0 * 1000 * 656 * 2 * 3);
  EXPECT_DOUBLE_EQ(result->link_bytes_per_step, 0);
  // The local copy has room for the longest context (1000 + 5 steps - 1 = 1004 tokens).
  EXPECT_DOUBLE_EQ(result->local_bytes, 3.0 * 1004 * 656 * 2 * 3);
  EXPECT_GT(result->admission_s, 0);
  EXPECT_GT(result->ttft_s, result->admission_s);
  EXPECT_GT(result->entries_checked, 4u * 3 * 50);
  // The top-k strategies admit nothing: their TTFT is the first fetch.
  auto topk = MakeClientFetch("rdma-topk", Connect("ucx"), false);
  auto topk_result = RunCell(plan, *prefill, *topk, [](const std::string&) {});
  ASSERT_TRUE(topk_result.ok()) << topk_result.status();
  EXPECT_DOUBLE_EQ(topk_result->admission_bytes, 0);
  EXPECT_DOUBLE_EQ(topk_result->local_bytes, 0);
}

// The request-level run: every request arrives, is admitted, decodes its whole output
// and leaves; entries are checked every step; the prefix pull moves each prompt once
// (every stored layer) and holds at most `concurrency` copies. With a CUDA device the
// GPU strategies run too (on the device machine: tools/gpu_check.sh); here they say
// they need one.
RequestRunPlan SmallRequestPlan() {
  RequestRunPlan plan;
  plan.model.top_k = 128;
  plan.arrivals.requests = 6;
  plan.arrivals.rate_per_s = 50;
  plan.arrivals.min_context = 512;
  plan.arrivals.max_context = 2048;
  plan.arrivals.output_tokens = 5;
  plan.concurrency = 2;
  plan.fetched_layers = 3;
  plan.stored_layers = 2;
  return plan;
}

RequestShape ShapeOf(const RequestRunPlan& plan) {
  RequestShape shape;
  shape.max_batch = plan.concurrency;
  shape.stored_layers = plan.stored_layers;
  shape.fetched_layers = plan.fetched_layers;
  shape.entry_bytes = plan.model.entry_bytes;
  shape.k = plan.model.top_k;
  shape.max_tokens = plan.arrivals.max_context + plan.arrivals.output_tokens;
  return shape;
}

TEST_F(BenchCellTest, RequestsArriveDecodeAndLeaveWithEveryStrategy) {
  auto prefill = Connect("cxl");
  const RequestRunPlan plan = SmallRequestPlan();
  const RequestShape shape = ShapeOf(plan);
  auto arrivals = GenerateArrivals(plan.arrivals);
  ASSERT_TRUE(arrivals.ok());
  uint64_t prompt_tokens = 0, largest = 0, second = 0;
  for (const Arrival& a : *arrivals) {
    prompt_tokens += a.context;
    if (a.context > largest) {
      second = largest;
      largest = a.context;
    } else {
      second = std::max(second, a.context);
    }
  }
  std::vector<std::unique_ptr<RequestStrategy>> strategies;
  strategies.push_back(MakePrefixPullRequests("rdma-prefix-pull", Connect("ucx"), Connect("ucx"), shape));
  strategies.push_back(MakeTopKRequests("rdma-topk", Connect("ucx"), shape));
  strategies.push_back(MakeTopKRequests("cxl-cpu-topk", Connect("cxl"), shape));
  for (const bool hbm : {true, false}) {
    auto pull = MakeGpuPrefixPullRequests(hbm ? "rdma-prefix-pull-gpu" : "rdma-prefix-pull-pinned", Connect("ucx"),
                                          Connect("ucx"), shape, hbm);
    if (!pull.ok()) {
      EXPECT_TRUE(absl::IsFailedPrecondition(pull.status())) << pull.status();
      continue;
    }
    strategies.push_back(*std::move(pull));
  }
  for (const uint32_t slots : {0u, 256u}) {
    auto session = MakeSessionRequests(slots == 0 ? "cxl-gpu-topk" : "cxl-gpu-topk-cache", Connect("cxl"), shape, slots);
    if (!session.ok()) {
      EXPECT_TRUE(absl::IsFailedPrecondition(session.status())) << session.status();
      EXPECT_THAT(std::string(session.status().message()), HasSubstr("no CUDA device"));
      continue;
    }
    strategies.push_back(*std::move(session));
  }
  if (strategies.size() == 3) std::printf("[ SKIPPED  ] the GPU request strategies: no CUDA device here\n");
  for (auto& strategy : strategies) {
    SCOPED_TRACE(strategy->name());
    auto result = RunRequests(plan, *prefill, *strategy, [](const std::string&) {});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->completed, 6u);
    EXPECT_EQ(result->tokens, 6u * 5);
    EXPECT_GT(result->entries_checked, 6u * 5 * 4);
    EXPECT_GT(result->ttft_p50_s, 0);
    EXPECT_GE(result->ttft_p99_s, result->ttft_p50_s);
    EXPECT_GT(result->tbt_p50_s, 0);
    EXPECT_GT(result->tokens_per_s, 0);
    ASSERT_EQ(result->requests.size(), 6u);
    for (const auto& r : result->requests) {
      EXPECT_LE(r.arrival_s, r.placed_s);
      EXPECT_LE(r.placed_s, r.admitted_s);
      EXPECT_LT(r.admitted_s, r.first_token_s);
      EXPECT_LT(r.first_token_s, r.done_s);
    }
    const bool pulls = strategy->name().find("prefix-pull") != std::string::npos;
    if (pulls) {
      EXPECT_EQ(result->admission_bytes, prompt_tokens * 2 * 656);
      // At most two requests hold a copy at once: the two longest copies bound the peak.
      EXPECT_LE(result->peak_local_bytes, (largest + second + 2 * 5) * 2 * 656);
      EXPECT_GE(result->peak_local_bytes, (largest + 5) * 2 * 656);
      EXPECT_EQ(strategy->LocalBytes(), 0u) << "every copy went with its request";
    } else {
      EXPECT_EQ(result->admission_bytes, 0u);
      EXPECT_EQ(result->peak_local_bytes, 0u);
    }
  }
}

// A step whose shape disagrees with the strategy's, or names a request that never
// joined, is refused with what was wrong; nothing is written.
TEST_F(BenchCellTest, RequestStrategiesRefuseBadSteps) {
  const RequestShape shape = ShapeOf(SmallRequestPlan());
  auto strategy = MakeTopKRequests("cxl-cpu-topk", Connect("cxl"), shape);
  const StepRow rows[] = {{1, 10}};
  std::vector<std::byte> entries(2 * 656);
  std::vector<int32_t> indices(3 * 128, -1);
  absl::Status short_entries = strategy->Step(rows, absl::MakeSpan(entries).subspan(1), indices);
  EXPECT_TRUE(absl::IsInvalidArgument(short_entries)) << short_entries;
  EXPECT_THAT(std::string(short_entries.message()), HasSubstr("1 rows"));
  auto pull = MakePrefixPullRequests("rdma-prefix-pull", Connect("cxl"), Connect("cxl"), shape);
  absl::Status unknown = pull->Step(rows, entries, indices);
  EXPECT_FALSE(unknown.ok());
  EXPECT_TRUE(absl::IsNotFound(pull->Join(12345, 10)));
}

// The dense-attention baseline, now in bench/: the same entries as the top-k fetch, and
// the same refusal of a bad index.
TEST_F(BenchCellTest, TheFullPrefixBaselineDeliversWhatTheTopKFetchDelivers) {
  for (const char* transport : {"cxl", "ucx"}) {
    SCOPED_TRACE(transport);
    auto client = Connect(transport);
    std::vector<SequenceId> batch;
    for (uint64_t tokens : {250, 70}) {
      SequenceSpec spec;
      spec.layers = 2;
      spec.entry_bytes = 656;
      spec.tokens = tokens;
      auto id = client->CreateSequence(spec);
      ASSERT_TRUE(id.ok()) << id.status();
      std::vector<std::byte> entries(tokens * 656);
      for (uint64_t t = 0; t < tokens; ++t) FillEntry(4, *id, 1, t, absl::MakeSpan(entries).subspan(t * 656, 656));
      ASSERT_TRUE(client->WriteEntries(*id, 1, 0, entries).ok());
      batch.push_back(*id);
    }
    const std::vector<int32_t> indices = {0, 249, -1, 17, 69, 3, -1, 0};
    std::vector<std::byte> topk(indices.size() * 656, std::byte{0x11}), prefix = topk;
    ASSERT_TRUE(client->FetchTopK(1, batch, indices, absl::MakeSpan(topk)).ok());
    ASSERT_TRUE(FetchThroughPrefix(*client, 1, batch, indices, absl::MakeSpan(prefix)).ok());
    EXPECT_TRUE(topk == prefix);
    const std::vector<int32_t> past = {0, 1, 2, 3, 70, 1, 2, 3};  // row 1 holds 70 tokens
    absl::Status refused = FetchThroughPrefix(*client, 1, batch, past, absl::MakeSpan(prefix));
    EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
    EXPECT_THAT(std::string(refused.message()), HasSubstr("token index 70 at batch row 1"));
  }
}

TEST_F(BenchCellTest, ACacheSmallerThanTopKIsRefusedWithTheReason) {
  auto prefill = Connect("cxl");
  auto strategy = MakeHostCacheFetch("cxl-cpu-topk-cache", Connect("cxl"), 100);
  auto result = RunCell(Plan(), *prefill, *strategy, [](const std::string&) {});
  EXPECT_TRUE(absl::IsInvalidArgument(result.status()));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("cache capacity 100 is below k = 256"));
}

TEST_F(BenchCellTest, ATraceShorterThanTheRunIsRefused) {
  auto prefill = Connect("cxl");
  TraceParams params;
  params.layers = 3;
  params.k = 256;
  params.context = 1000;
  params.steps = 2;
  const Trace trace = GenerateTrace(params);
  CellPlan plan = Plan();
  plan.trace = &trace;
  auto strategy = MakeClientFetch("cxl-cpu-topk", Connect("cxl"), false);
  auto result = RunCell(plan, *prefill, *strategy, [](const std::string&) {});
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("the trace has 2 steps; the run needs 5"));
}

TEST_F(BenchCellTest, AReplayedTraceDrivesTheCell) {
  auto prefill = Connect("cxl");
  TraceParams params;
  params.layers = 2;
  params.k = 128;
  params.context = 700;
  params.steps = 5;
  params.growth = 3;  // the appends follow the trace's context
  const Trace trace = GenerateTrace(params);
  CellPlan plan = Plan();
  plan.trace = &trace;
  auto strategy = MakeClientFetch("cxl-cpu-topk", Connect("cxl"), false);
  auto result = RunCell(plan, *prefill, *strategy, [](const std::string&) {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->context, 700u);
  EXPECT_EQ(result->layers_fetched, 2u);
  EXPECT_DOUBLE_EQ(result->link_bytes_per_step, 3.0 * 128 * 656 * 6);
}

TEST(GpuStrategyTest, WithoutADeviceTheGpuStrategiesSaySo) {
  auto fetch = MakeGpuFetch("cxl-gpu-topk", nullptr);  // the device check comes first
  if (fetch.ok()) GTEST_SKIP() << "a CUDA device is present; the GPU strategies run in gpu_check.sh";
  EXPECT_TRUE(absl::IsFailedPrecondition(fetch.status()));
  EXPECT_THAT(std::string(fetch.status().message()), HasSubstr("no CUDA device"));
}

TEST(BenchReportTest, CsvMarkdownAndPlotScriptCarryEveryCell) {
  std::vector<CellResult> results;
  for (uint64_t context : {8192, 32768}) {
    for (const char* strategy : {"rdma-prefix-pull", "cxl-cpu-topk"}) {
      const bool pull = std::string(strategy) == "rdma-prefix-pull";
      CellResult r;
      r.context = context;
      r.batch = 4;
      r.strategy = strategy;
      r.layers_fetched = 4;
      r.scale = 15.25;
      r.fetch_p50_s = pull ? 2.0 : 0.05;
      r.fetch_p99_s = r.fetch_p50_s * 1.1;
      r.link_bytes_per_step = pull ? 0 : 100.0 * (1 << 20);
      r.steps_per_s = 1 / r.fetch_p50_s;
      r.admission_s = pull ? 3.0 : 0;
      r.admission_bytes = pull ? 2048.0 * (1 << 20) : 0;
      r.local_bytes = r.admission_bytes;
      r.ttft_s = r.admission_s + r.fetch_p50_s;
      results.push_back(r);
    }
  }
  const std::string csv = ResultsCsv(results);
  EXPECT_THAT(csv, HasSubstr("context,batch,strategy,fetch_p50_ms"));
  EXPECT_THAT(csv, HasSubstr("32768,4,cxl-cpu-topk,50.0000,55.0000,0.0000,100.000,0,20.0000,4,15.2500,0.0000,0.000,"
                             "50.0000,0.000"));
  EXPECT_THAT(csv, HasSubstr("8192,4,rdma-prefix-pull,2000.0000,2200.0000,0.0000,0.000,0,0.5000,4,15.2500,"
                             "3000.0000,2048.000,5000.0000,2048.000"));
  const std::string md = ResultsMarkdown(results);
  // Relative to the cell's first strategy: 20 steps/s against 0.5.
  EXPECT_THAT(md, HasSubstr("| 32K | 4 | cxl-cpu-topk | 50.00 ms | - | - | 50.00 ms | 55.00 ms | 100.00 MiB | 0.0 M | "
                            "20.00 | 40.00x |"));
  EXPECT_THAT(md, HasSubstr("| 8K | 4 | rdma-prefix-pull | 5.00 s | 2.00 GiB | 2.00 GiB | 2.00 s | 2.20 s | 0 B | "
                            "0.0 M | 0.50 | 1.00x |"));
  // The rdma-* rows modelled on a NIC: the pull's 2 GiB at 25 GB/s in pages of 64 x 656 B
  // read at 50 M/s plus one round trip; its steps move nothing.
  ModelGeometry model;
  const std::string nic = ModelledNicMarkdown(results, model, NicParams{});
  EXPECT_THAT(nic, HasSubstr("Modelled, not measured"));
  const double pull = 3e-6 + 2048.0 * (1 << 20) / 25e9 + 2048.0 * (1 << 20) / (64 * 656) / 50e6;
  EXPECT_THAT(nic, HasSubstr(absl::StrFormat("| 8K | 4 | rdma-prefix-pull | %.2f ms | none", pull * 1e3)));
  EXPECT_THAT(nic, ::testing::Not(HasSubstr("cxl-cpu-topk"))) << "only the RDMA rows are modelled";
  const std::string gp = GnuplotScript(results);
  EXPECT_THAT(gp, HasSubstr("set output 'steps_per_second.png'"));
  EXPECT_THAT(gp, HasSubstr("8192 50.0000 100.000 20.0000"));
  EXPECT_THAT(gp, HasSubstr("title 'rdma-prefix-pull'"));
}

}  // namespace
}  // namespace sparsepool::bench
