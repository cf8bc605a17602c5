// The load tool's per-tenant CPU groups (issue 14): how the cores are split, and, as
// root where a cpu controller is mounted, real groups that confine a real process to
// its tenant's cores.
#include "bench/tenant_cpu_groups.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_text.h"
#include "gtest/gtest.h"

namespace sparsepool::bench {
namespace {

using Cores = std::vector<int>;

TEST(PartitionCoresTest, SplitsTheCoresIntoEqualRunsOfConsecutiveOnes) {
  Cores sixteen;
  for (int c = 0; c < 16; ++c) sixteen.push_back(c);
  EXPECT_EQ(PartitionCores(sixteen, 2), (std::vector<Cores>{{0, 1, 2, 3, 4, 5, 6, 7}, {8, 9, 10, 11, 12, 13, 14, 15}}));
  // Where they do not divide, the cores left over go to no tenant: the shares stay equal.
  EXPECT_EQ(PartitionCores({0, 1, 2, 3, 4}, 3), (std::vector<Cores>{{0}, {1}, {2}}));
  // The cores this process may use need not be consecutive numbers.
  EXPECT_EQ(PartitionCores({1, 3, 5, 7}, 2), (std::vector<Cores>{{1, 3}, {5, 7}}));
  EXPECT_EQ(PartitionCores({4}, 1), (std::vector<Cores>{{4}}));
}

TEST(PartitionCoresTest, FewerCoresThanTenantsCannotGiveEachOne) {
  EXPECT_TRUE(PartitionCores({0, 1}, 3).empty());
  EXPECT_TRUE(PartitionCores({}, 1).empty());
  EXPECT_TRUE(PartitionCores({0, 1}, 0).empty());
}

TEST(FormatCoreListTest, WritesTheKernelsListFormat) {
  EXPECT_EQ(FormatCoreList({}), "");
  EXPECT_EQ(FormatCoreList({3}), "3");
  EXPECT_EQ(FormatCoreList({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
  EXPECT_EQ(FormatCoreList({0, 2, 4}), "0,2,4");
}

TEST(AllowedCoresTest, ListsThisProcesssCoresInOrder) {
  const Cores cores = AllowedCores();
  ASSERT_FALSE(cores.empty());
  EXPECT_LE(cores.size(), static_cast<size_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  for (size_t i = 1; i < cores.size(); ++i) EXPECT_LT(cores[i - 1], cores[i]);
}

TEST(TenantCpuGroupsTest, RefusesATenantNameThatCannotNameAGroup) {
  for (const char* bad : {"", ".hidden", "a/b"}) {
    absl::StatusOr<std::unique_ptr<TenantCpuGroups>> groups = TenantCpuGroups::Create({"fine", bad});
    ASSERT_FALSE(groups.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(groups.status())) << groups.status();
    EXPECT_TRUE(absl::StrContains(groups.status().message(), "cannot name a control group")) << groups.status();
  }
}

TEST(TenantCpuGroupsTest, SharesTheCoresWhenAskedTo) {
  if (geteuid() != 0) GTEST_SKIP() << "control groups need root";
  absl::StatusOr<std::unique_ptr<TenantCpuGroups>> groups = TenantCpuGroups::Create({"a", "b"}, /*own_cores=*/false);
  if (!groups.ok() && absl::StrContains(groups.status().message(), "no cpu controller")) {
    GTEST_SKIP() << "no cpu controller here: " << groups.status();
  }
  ASSERT_TRUE(groups.ok()) << groups.status();
  EXPECT_TRUE((*groups)->CoresOf("a").empty());
  EXPECT_TRUE(absl::StrContains((*groups)->description(), "on shared cores: asked for")) << (*groups)->description();
}

// The line of /proc/PID/status that starts with `key`, its value.
std::string StatusLine(pid_t pid, const std::string& key) {
  absl::StatusOr<std::string> text = ReadFileText(absl::StrCat("/proc/", pid, "/status"), "status");
  if (!text.ok()) return "";
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (absl::ConsumePrefix(&line, key + ":")) return std::string(absl::StripAsciiWhitespace(line));
  }
  return "";
}

TEST(TenantCpuGroupsTest, ConfinesATenantsProcessToItsOwnCoresAndRemovesTheGroups) {
  if (geteuid() != 0) GTEST_SKIP() << "control groups need root";
  absl::StatusOr<std::unique_ptr<TenantCpuGroups>> groups = TenantCpuGroups::Create({"quiet", "flood"});
  if (!groups.ok() && absl::StrContains(groups.status().message(), "no cpu controller")) {
    GTEST_SKIP() << "no cpu controller here: " << groups.status();
  }
  ASSERT_TRUE(groups.ok()) << groups.status();
  const std::string description = (*groups)->description();
  EXPECT_TRUE(absl::StrContains(description, absl::StrCat("sparsepool-load-", getpid()))) << description;

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  // Gone before the groups are removed, however the test ends.
  absl::Cleanup reap = [child] {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  };
  ASSERT_TRUE((*groups)->Add("quiet", child).ok());
  absl::StatusOr<std::string> cgroups = ReadFileText(absl::StrCat("/proc/", child, "/cgroup"), "cgroup");
  ASSERT_TRUE(cgroups.ok());
  EXPECT_TRUE(absl::StrContains(*cgroups, absl::StrCat("/sparsepool-load-", getpid(), "/tenant-quiet"))) << *cgroups;
  const Cores quiet = (*groups)->CoresOf("quiet"), flood = (*groups)->CoresOf("flood");
  const Cores allowed = AllowedCores();
  if (allowed.size() >= 2 && absl::StrContains(description, "on cores of its own")) {
    EXPECT_EQ(quiet, PartitionCores(allowed, 2)[0]);
    EXPECT_EQ(flood, PartitionCores(allowed, 2)[1]);
    // The kernel's own word on where the child may run: the quiet tenant's cores only.
    EXPECT_EQ(StatusLine(child, "Cpus_allowed_list"), FormatCoreList(quiet));
  } else {
    EXPECT_TRUE(quiet.empty() && flood.empty()) << description;
    EXPECT_TRUE(absl::StrContains(description, "on shared cores")) << description;
  }
  EXPECT_TRUE(absl::IsNotFound((*groups)->Add("nobody", child)));

  std::move(reap).Invoke();
  // The groups go with the object: none of the parents it named is left.
  std::vector<std::string> parents;
  for (absl::string_view word : absl::StrSplit(description, ' ')) {
    if (absl::StrContains(word, "sparsepool-load-")) parents.emplace_back(word);
  }
  ASSERT_FALSE(parents.empty()) << description;
  groups->reset();
  struct stat st;
  for (const std::string& parent : parents) EXPECT_NE(stat(parent.c_str(), &st), 0) << parent << " is still there";
}

}  // namespace
}  // namespace sparsepool::bench
