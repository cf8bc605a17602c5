// sparsepool-load against a real daemon: every worker process runs its decode stream,
// checks what it fetched, and the summary has a row per worker and one over all; a
// worker that cannot reach the daemon fails the run, saying why.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"
#include "tests/daemon_process.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

TEST(LoadTest, EveryWorkerRunsItsStreamAndTheSummaryCountsThemAll) {
  testing::DaemonProcess daemon("load-test");
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  const std::string out = absl::StrCat(testing::TestTempDir(), "/load-out");
  testing::CommandResult run = testing::RunCommand(
      {"bench/sparsepool_load", absl::StrCat("--address=", daemon.address()), "--workers=3", "--seconds=2",
       "--requests=2", "--context=1024", "--layers=2", "--k=128", "--churn=4", absl::StrCat("--out=", out)});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  int worker_rows = 0;
  for (absl::string_view line : absl::StrSplit(run.output, '\n')) {
    if (!absl::StartsWith(line, "| ") || absl::StartsWith(line, "| worker")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, " | ");
    ASSERT_GE(cells.size(), 10u) << line;
    uint64_t steps = 0, checked = 0;
    ASSERT_TRUE(absl::SimpleAtoi(cells[1], &steps)) << line;
    ASSERT_TRUE(absl::SimpleAtoi(absl::StripSuffix(cells[9], " |"), &checked)) << line;
    EXPECT_GT(steps, 4u) << line << ": the stream stepped, and requests were replaced";
    EXPECT_EQ(checked, steps * 2 * 2) << line << ": two entries per request and step";
    if (!absl::StartsWith(line, "| all")) ++worker_rows;
  }
  EXPECT_EQ(worker_rows, 3);
  EXPECT_THAT(run.output, HasSubstr("| all |"));
  // Nothing stays behind: every worker released its requests.
  testing::CommandResult list = testing::RunCommand({"tools/sparsepoolctl", absl::StrCat("--address=", daemon.address()), "stats"});
  EXPECT_THAT(list.output, ::testing::ContainsRegex("sequences +0 live"));
}

TEST(LoadTest, WorkersThatCannotReachTheDaemonFailTheRun) {
  testing::CommandResult run = testing::RunCommand(
      {"bench/sparsepool_load", "--address=127.0.0.1:1", "--workers=2", "--seconds=1",
       absl::StrCat("--out=", testing::TestTempDir(), "/load-unreachable")});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("sparsepool_load worker 0: UNAVAILABLE"));
  EXPECT_THAT(run.output, HasSubstr("worker(s) FAILED"));
  testing::CommandResult bad = testing::RunCommand({"bench/sparsepool_load", "--workers=0"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("bad argument --workers=0"));
}

}  // namespace
}  // namespace sparsepool
