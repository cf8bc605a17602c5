// Per-RPC metrics: each call lands in its method's and status code's histogram, the
// buckets are cumulative, and names a peer made up are not labels of their own.
#include "service/rpc_metrics.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RpcMetricsTest, CallsLandInTheirMethodStatusAndBucket) {
  RpcMetrics metrics("sparsepool.v1.PoolService");
  metrics.Record("/sparsepool.v1.PoolService/CreateSequence", grpc::StatusCode::OK, absl::Microseconds(300));
  metrics.Record("/sparsepool.v1.PoolService/CreateSequence", grpc::StatusCode::OK, absl::Milliseconds(30));
  metrics.Record("/sparsepool.v1.PoolService/GetLayout", grpc::StatusCode::NOT_FOUND, absl::Seconds(20));
  const std::string text = metrics.Text();
  EXPECT_THAT(text, HasSubstr("# TYPE sparsepool_rpc_duration_seconds histogram\n"));
  const std::string create = "method=\"CreateSequence\",code=\"OK\"";
  // 300 us: in the 0.0005 bucket and every one above it; 30 ms from 0.05 on.
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_bucket{" + create + ",le=\"0.00025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_bucket{" + create + ",le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_bucket{" + create + ",le=\"0.025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_bucket{" + create + ",le=\"0.05\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_bucket{" + create + ",le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_count{" + create + "} 2\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_sum{" + create + "} 0.030300\n"));
  // Past the last bound: only +Inf.
  const std::string layout = "method=\"GetLayout\",code=\"NOT_FOUND\"";
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_bucket{" + layout + ",le=\"10\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_bucket{" + layout + ",le=\"+Inf\"} 1\n"));
}

TEST(RpcMetricsTest, MethodsOfOtherServicesOrOddNamesAreOther) {
  RpcMetrics metrics("sparsepool.v1.PoolService");
  metrics.Record("/evil.Service/Anything", grpc::StatusCode::UNIMPLEMENTED, absl::Microseconds(1));
  metrics.Record("/sparsepool.v1.PoolService/" + std::string(1000, 'x'), grpc::StatusCode::UNIMPLEMENTED,
                 absl::Microseconds(1));
  metrics.Record("/sparsepool.v1.PoolService/Bad\"Name", grpc::StatusCode::UNIMPLEMENTED, absl::Microseconds(1));
  const std::string text = metrics.Text();
  EXPECT_THAT(text, HasSubstr("sparsepool_rpc_duration_seconds_count{method=\"other\",code=\"UNIMPLEMENTED\"} 3\n"));
  EXPECT_THAT(text, Not(HasSubstr("evil")));
  EXPECT_THAT(text, Not(HasSubstr("xxxx")));
  EXPECT_EQ(std::string(StatusCodeName(grpc::StatusCode::RESOURCE_EXHAUSTED)), "RESOURCE_EXHAUSTED");
}

}  // namespace
}  // namespace sparsepool
