#include <sys/socket.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/scoped_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/metrics_http.h"
#include "service/metrics_text.h"
#include "tests/local_http.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(MetricsTextTest, EveryFigureWithItsTypeAndEscapedLabels) {
  DaemonFigures f;
  RegionUsage usage;
  usage.region.index = 1;
  usage.region.kind = "shm";
  usage.region.path = "/dev/shm/odd\"name\\x";
  usage.capacity_bytes = 1000;
  usage.used_bytes = 600;
  usage.reclaimable_bytes = 300;
  usage.free_bytes = 100;
  f.pool.regions.push_back(usage);
  f.pool.live_sequences = 7;
  f.pool.reclaimable_sequences = 2;
  f.pool.leases = 3;
  f.pool.sequences_created = 40;
  f.pool.sequences_evicted = 5;
  f.pool.leases_expired = 1;
  f.pool.sequences_recovered = 9;
  f.requests_waiting_for_memory = 4;
  f.uptime = absl::Milliseconds(12345);
  const std::string text = MetricsText(f);
  const std::string labels = "{region=\"1\",kind=\"shm\",path=\"/dev/shm/odd\\\"name\\\\x\"}";
  const std::vector<std::string> lines = {
           "# TYPE sparsepool_region_capacity_bytes gauge",
           "sparsepool_region_capacity_bytes" + labels + " 1000",
           "sparsepool_region_used_bytes" + labels + " 600",
           "sparsepool_region_reclaimable_bytes" + labels + " 300",
           "sparsepool_region_free_bytes" + labels + " 100",
           std::string("sparsepool_live_sequences 7"),
           std::string("sparsepool_reclaimable_sequences 2"),
           std::string("sparsepool_leases 3"),
           std::string("sparsepool_requests_waiting_for_memory 4"),
           std::string("# TYPE sparsepool_sequences_created_total counter"),
           std::string("sparsepool_sequences_created_total 40"),
           std::string("sparsepool_sequences_evicted_total 5"),
           std::string("sparsepool_leases_expired_total 1"),
           std::string("sparsepool_sequences_recovered 9"),
           std::string("sparsepool_uptime_seconds 12.345"),
  };
  for (const std::string& line : lines) {
    EXPECT_THAT(text, HasSubstr(line + "\n"));
  }
  // Every sample line belongs to a family declared just before it.
  std::string family;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# TYPE ")) {
      family = std::string(absl::StripPrefix(line, "# TYPE "));
      family = family.substr(0, family.find(' '));
    } else if (!absl::StartsWith(line, "#")) {
      EXPECT_TRUE(absl::StartsWith(line, family)) << line << " after family " << family;
    }
  }
  EXPECT_EQ(EscapeLabelValue("a\nb"), "a\\nb");
}

TEST(MetricsHttpTest, ParseGetRequestNamesWhatIsWrong) {
  EXPECT_EQ(*ParseGetRequest("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "/metrics");
  EXPECT_EQ(*ParseGetRequest("GET /metrics?a=b HTTP/1.0\r\n\r\n"), "/metrics");
  const std::pair<const char*, const char*> bad[] = {
      {"GET /metrics HTTP/1.1", "not terminated by CRLF"},
      {"POST /metrics HTTP/1.1\r\n", "method POST is not GET"},
      {"GET /metrics HTTP/2\r\n", "not HTTP/1.0 or HTTP/1.1"},
      {"GET metrics HTTP/1.1\r\n", "does not start with /"},
      {"GET  /metrics HTTP/1.1\r\n", "4 space-separated parts"},
  };
  for (const auto& [head, message] : bad) {
    auto path = ParseGetRequest(head);
    EXPECT_TRUE(absl::IsInvalidArgument(path.status())) << head;
    EXPECT_THAT(std::string(path.status().message()), HasSubstr(message)) << head;
  }
}

using ::sparsepool::testing::AskLocal;
using ::sparsepool::testing::ConnectLocal;

TEST(MetricsHttpTest, ServesMetricsAndRefusesEverythingElse) {
  std::atomic<int> renders{0};
  auto server = MetricsHttpServer::Start("127.0.0.1:0", [&] {
    return absl::StrCat("sparsepool_test_renders ", ++renders, "\n");
  });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_GT(port, 0);
  std::string answer = AskLocal(port, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(answer, HasSubstr("Content-Length: 26\r\n"));
  EXPECT_THAT(answer, HasSubstr("\r\n\r\nsparsepool_test_renders 1\n"));
  EXPECT_THAT(AskLocal(port, "GET / HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404 Not Found"));
  EXPECT_THAT(AskLocal(port, "DELETE /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 400 Bad Request"));
  EXPECT_THAT(AskLocal(port, std::string(9000, 'x')), StartsWith("HTTP/1.1 431"));
  {
    // A client that connects and says nothing is cut off; the next one is answered.
    ScopedFd silent = ConnectLocal(port);
    EXPECT_THAT(AskLocal(port, "GET /metrics HTTP/1.0\r\n\r\n"), HasSubstr("sparsepool_test_renders 2"));
  }
  EXPECT_EQ(renders.load(), 2);
}

// Idle and trickling connections never hold up a scrape (one connection at a time took
// 10 s with 5 idle connections open, 36 s with 20).
TEST(MetricsHttpTest, IdleAndSlowConnectionsDoNotHoldUpAScrape) {
  auto server = MetricsHttpServer::Start("127.0.0.1:0", [] { return std::string("sparsepool_up 1\n"); });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  std::vector<ScopedFd> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(ConnectLocal(port));
  std::vector<ScopedFd> trickling;
  for (int i = 0; i < 5; ++i) {
    trickling.push_back(ConnectLocal(port));
    ASSERT_EQ(send(trickling.back().get(), "GET /met", 8, MSG_NOSIGNAL), 8);
  }
  for (int scrape = 0; scrape < 3; ++scrape) {
    const absl::Time start = absl::Now();
    EXPECT_THAT(AskLocal(port, "GET /metrics HTTP/1.1\r\n\r\n"), HasSubstr("sparsepool_up 1"));
    EXPECT_LT(absl::Now() - start, absl::Seconds(1)) << "scrape " << scrape;
  }
  // Past kMaxConnections, new connections are closed at once, and once the idle ones
  // time out (2 s) scrapes are answered again.
  std::vector<ScopedFd> flood;
  for (size_t i = 0; i < MetricsHttpServer::kMaxConnections; ++i) flood.push_back(ConnectLocal(port));
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_THAT(AskLocal(port, "GET /metrics HTTP/1.1\r\n\r\n"), HasSubstr("sparsepool_up 1"));
}

TEST(MetricsHttpTest, BadListenAddressesAreRefused) {
  EXPECT_TRUE(absl::IsInvalidArgument(MetricsHttpServer::Start("no-port", [] { return ""; }).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      MetricsHttpServer::Start("999.1.1.1:80", [] { return ""; }).status()));
  auto first = MetricsHttpServer::Start("127.0.0.1:0", [] { return ""; });
  ASSERT_TRUE(first.ok());
  auto taken = MetricsHttpServer::Start(absl::StrCat("127.0.0.1:", (*first)->port()), [] { return ""; });
  EXPECT_TRUE(absl::IsUnavailable(taken.status())) << taken.status();
  EXPECT_THAT(std::string(taken.status().message()), HasSubstr("bind"));
}

}  // namespace
}  // namespace sparsepool
