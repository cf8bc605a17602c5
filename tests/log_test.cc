// The daemon's log: levels, a flood of one kind bounded to a few lines and a summary,
// and strings a client chose escaped and cut.
#include "common/log.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

class LogTest : public ::testing::Test {
 protected:
  LogOptions Options() {
    LogOptions o;
    o.sink = [this](absl::string_view line) { lines_.emplace_back(line); };
    o.now = [this] { return now_; };
    return o;
  }
  std::vector<std::string> lines_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(LogTest, LinesCarryTheProgramAndLevelsBelowTheMinimumAreDropped) {
  LogOptions o = Options();
  o.min_level = LogLevel::kWarning;
  Logger log(o);
  log.Info("hidden");
  log.Warning("disk slow");
  log.Error("region gone");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_THAT(lines_[0], ::testing::ContainsRegex("^[0-9-]+T[0-9:.]+ sparsepoold\\[[0-9]+\\] WARNING: disk slow\n$"));
  EXPECT_THAT(lines_[1], HasSubstr("ERROR: region gone"));
  EXPECT_TRUE(ParseLogLevel("warning").ok());
  EXPECT_THAT(ParseLogLevel("loud").status().message(), HasSubstr("not info, warning or error"));
}

TEST_F(LogTest, AFloodOfOneKindIsAFewLinesAndASummary) {
  Logger log(Options());
  for (int i = 0; i < 10000; ++i) {
    log.Limited(LogLevel::kInfo, "leases expired", absl::StrCat("lease of client \"c", i, "\" expired"));
    if (i % 100 == 0) now_ += absl::Milliseconds(1);  // 10,000 in 0.1 s
  }
  log.Limited(LogLevel::kInfo, "calls refused", "one of another kind is not held back");
  EXPECT_EQ(lines_.size(), 6u) << "5 of the flood, 1 of the other kind";
  now_ += absl::Seconds(10);
  log.Flush();
  ASSERT_EQ(lines_.size(), 7u);
  EXPECT_THAT(lines_.back(), HasSubstr("leases expired: 9995 more in the last 10s, not logged one by one"));
  // A new window writes again.
  log.Limited(LogLevel::kInfo, "leases expired", "after the flood");
  EXPECT_THAT(lines_.back(), HasSubstr("after the flood"));
  // Nothing is lost at the end: the destructor writes what a flush would.
  for (int i = 0; i < 10; ++i) log.Limited(LogLevel::kWarning, "calls refused", "again");
  const size_t before = lines_.size();
  { Logger moved_out(Options()); }
  EXPECT_EQ(lines_.size(), before) << "an idle logger writes nothing when destroyed";
}

TEST_F(LogTest, ClientChosenStringsAreEscapedAndBounded) {
  EXPECT_EQ(Quoted("worker-7"), "worker-7");
  EXPECT_EQ(Quoted("a\nforged line"), "a\\nforged line");
  const std::string huge(100000, 'x');
  const std::string q = Quoted(huge);
  EXPECT_LT(q.size(), 100u);
  EXPECT_THAT(q, HasSubstr("...(100000 bytes)"));
}

}  // namespace
}  // namespace sparsepool
