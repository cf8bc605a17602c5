// The client's counters as an engine exports them: histogram buckets, sums over node
// connections, and the Prometheus text.
#include "client/client_metrics.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ClientMetricsTest, LatenciesFallInTheFirstBucketThatHoldsThem) {
  LatencyHistogram h;
  for (double seconds : {5e-6, 10e-6, 11e-6, 2e-3, 3.0}) h.Observe(seconds);
  EXPECT_EQ(h.count, 5u);
  EXPECT_DOUBLE_EQ(h.sum_seconds, 5e-6 + 10e-6 + 11e-6 + 2e-3 + 3.0);
  EXPECT_EQ(h.counts[0], 2u) << "<= 10 us, the bound included";
  EXPECT_EQ(h.counts[1], 1u) << "(10, 25] us";
  EXPECT_EQ(h.counts[7], 1u) << "(1, 2.5] ms";
  EXPECT_EQ(h.counts.back(), 1u) << "past 1 s";
}

TEST(ClientMetricsTest, NodeConnectionsAddUpByTransportAndLayer) {
  ClientMetrics near, far;
  near.transports["cxl"].entries_fetched = 10;
  near.transports["cxl"].bytes_fetched = 6560;
  near.fetch_seconds_by_layer.resize(1);
  near.fetch_seconds_by_layer[0].Observe(1e-4);
  near.layouts_refreshed = 1;
  far.transports["ucx"].entries_fetched = 5;
  far.transports["cxl"].write_calls = 2;
  far.fetch_seconds_by_layer.resize(3);
  far.fetch_seconds_by_layer[2].Observe(1e-2);
  far.stale_layout_refusals = 4;
  far.step_growth_waits = 2;
  ClientMetrics total;
  total.Add(near);
  total.Add(far);
  EXPECT_EQ(total.transports["cxl"].entries_fetched, 10u);
  EXPECT_EQ(total.transports["cxl"].write_calls, 2u);
  EXPECT_EQ(total.transports["ucx"].entries_fetched, 5u);
  ASSERT_EQ(total.fetch_seconds_by_layer.size(), 3u);
  EXPECT_EQ(total.fetch_seconds_by_layer[0].count, 1u);
  EXPECT_EQ(total.fetch_seconds_by_layer[1].count, 0u);
  EXPECT_EQ(total.fetch_seconds_by_layer[2].count, 1u);
  EXPECT_EQ(total.layouts_refreshed, 1u);
  EXPECT_EQ(total.stale_layout_refusals, 4u);
  EXPECT_EQ(total.step_growth_waits, 2u);
}

TEST(ClientMetricsTest, TheTextIsPrometheusExposition) {
  ClientMetrics m;
  m.transports["cxl"].bytes_fetched = 6560;
  m.transports["ucx"].fetch_errors = 3;
  m.fetch_seconds_by_layer.resize(2);
  m.fetch_seconds_by_layer[1].Observe(30e-6);
  m.fetch_seconds_by_layer[1].Observe(2);
  m.step_growth_waits = 7;
  const std::string text = ClientMetricsText(m);
  EXPECT_THAT(text, HasSubstr("# TYPE sparsepool_client_fetched_bytes_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE sparsepool_client_step_growth_waits_total counter\n"
                              "sparsepool_client_step_growth_waits_total 7\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_client_fetched_bytes_total{transport=\"cxl\"} 6560\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_client_fetch_errors_total{transport=\"ucx\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE sparsepool_client_fetch_duration_seconds histogram\n"));
  // Buckets are cumulative; the +Inf bucket is the count.
  EXPECT_THAT(text, HasSubstr("sparsepool_client_fetch_duration_seconds_bucket{layer=\"1\",le=\"2.5e-05\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_client_fetch_duration_seconds_bucket{layer=\"1\",le=\"5e-05\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_client_fetch_duration_seconds_bucket{layer=\"1\",le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_client_fetch_duration_seconds_bucket{layer=\"1\",le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_client_fetch_duration_seconds_count{layer=\"1\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("layer=\"0\""))) << "a layer never fetched has no series";
  for (size_t at = text.find('\n'); at != std::string::npos && at + 1 < text.size(); at = text.find('\n', at + 1)) {
    EXPECT_NE(text[at + 1], ' ') << "no line starts with a space";
  }
}

TEST(ClientMetricsTest, TheResidencyCacheCountsInTheSameFormat) {
  const std::string text = ResidencyCacheText(40, 2);
  EXPECT_THAT(text, HasSubstr("# TYPE sparsepool_client_cache_hits_total counter\nsparsepool_client_cache_hits_total 40\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_client_cache_misses_total 2\n"));
}

}  // namespace
}  // namespace sparsepool
