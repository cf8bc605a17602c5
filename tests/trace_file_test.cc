// Trace generation statistics and the trace file format.
#include "bench/trace_file.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"

namespace sparsepool::bench {
namespace {

using ::testing::HasSubstr;

TraceParams Small() {
  TraceParams p;
  p.layers = 4;
  p.k = 512;
  p.context = 8192;
  p.steps = 40;
  p.overlap = 0.7;
  p.sinks = 4;
  p.window = 64;
  return p;
}

TEST(TraceTest, GeneratedStatisticsMatchTheParameters) {
  const TraceParams p = Small();
  const Trace trace = GenerateTrace(p);
  ASSERT_EQ(trace.steps(), p.steps);
  for (size_t step = 0; step < trace.steps(); ++step) {
    ASSERT_EQ(trace.context[step], p.context + step * p.growth) << "a decode step appends a token";
  }
  double overlap = 0;
  int pairs = 0;
  double layer_agreement = 0;
  for (size_t step = 0; step < trace.steps(); ++step) {
    for (uint32_t layer = 0; layer < p.layers; ++layer) {
      const int32_t* s = trace.Selection(step, layer);
      std::set<int32_t> now(s, s + p.k);
      ASSERT_EQ(now.size(), p.k) << "duplicates at step " << step;
      for (uint32_t t = 0; t < p.sinks; ++t) ASSERT_TRUE(now.count(t)) << "sink " << t;
      const int64_t tokens = static_cast<int64_t>(trace.context[step]);
      for (uint32_t w = 0; w < p.window; ++w) ASSERT_TRUE(now.count(tokens - 1 - w)) << "window, step " << step;
      ASSERT_LT(*now.rbegin(), tokens) << "a token not yet appended";
      if (step > 0) {
        const int32_t* before = trace.Selection(step - 1, layer);
        std::set<int32_t> previous(before, before + p.k);
        int shared = 0;
        for (int32_t t : now) shared += previous.count(t);
        overlap += double(shared) / p.k;
        ++pairs;
      }
      if (layer > 0) {
        const int32_t* first = trace.Selection(step, 0);
        std::set<int32_t> layer0(first, first + p.k);
        int shared = 0;
        for (int32_t t : now) shared += layer0.count(t);
        layer_agreement += double(shared) / p.k;
      }
    }
  }
  EXPECT_NEAR(overlap / pairs, p.overlap, 0.04);
  // Layers select differently (their own streams) but share sinks, window and the
  // most important tokens.
  const double agreement = layer_agreement / (trace.steps() * (p.layers - 1));
  EXPECT_LT(agreement, 0.6);
  EXPECT_GT(agreement, double(p.sinks + p.window) / p.k);
}

TEST(TraceTest, FileRoundTripsExactly) {
  const Trace trace = GenerateTrace(Small());
  const std::string path = testing::TestTempDir() + "/trace.sptrace";
  ASSERT_TRUE(WriteTraceFile(trace, path).ok());
  auto read = ReadTraceFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->layers, trace.layers);
  EXPECT_EQ(read->k, trace.k);
  EXPECT_EQ(read->context, trace.context);
  EXPECT_EQ(read->selections, trace.selections);
}

TEST(TraceTest, MalformedFilesAreRejectedWithTheReason) {
  const std::string good = EncodeTrace(GenerateTrace(Small()));
  EXPECT_THAT(std::string(DecodeTrace("hello").status().message()), HasSubstr("not a sparsepool trace"));
  std::string bad = good;
  bad[8] = 9;  // version
  EXPECT_THAT(std::string(DecodeTrace(bad).status().message()), HasSubstr("version 9"));
  EXPECT_THAT(std::string(DecodeTrace(good.substr(0, good.size() - 10)).status().message()), HasSubstr("truncated"));
  bad = good;
  bad[100] ^= 0x20;
  EXPECT_TRUE(absl::IsDataLoss(DecodeTrace(bad).status()));
  // A token outside the context, with a valid checksum: named by step and layer.
  Trace trace = GenerateTrace(Small());
  trace.selections[(2 * trace.layers + 1) * trace.k + 7] = 8194;  // context 8194 at step 2
  EXPECT_THAT(std::string(DecodeTrace(EncodeTrace(trace)).status().message()),
              HasSubstr("step 2, layer 1, position 7: token 8194 is outside the context"));
  trace.layers = 0;
  EXPECT_FALSE(DecodeTrace(EncodeTrace(Trace{})).ok());
  EXPECT_TRUE(absl::IsNotFound(ReadTraceFile("/nonexistent/trace").status()));
}

}  // namespace
}  // namespace sparsepool::bench
