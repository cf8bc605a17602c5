// Regions dedicated to tenants: which tenant lives where, the data plane's domains, and
// the file owner and mode the daemon gives a dedicated region (checked against a real
// process of another user, when the test runs as root).
#include "service/region_access.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"
#include "transport/cxl/region_mapping.h"

namespace sparsepool {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RegionAccessTest, TenantsWithRegionsOfTheirOwnLiveOnlyThere) {
  // 0: shared, 1: acme, 2: acme and initech, 3: shared.
  RegionAccess access({{}, {"acme"}, {"acme", "initech"}, {}});
  EXPECT_THAT(access.RegionsOf("acme"), ElementsAre(1, 2));
  EXPECT_THAT(access.RegionsOf("initech"), ElementsAre(2));
  EXPECT_THAT(access.RegionsOf("globex"), ElementsAre(0, 3)) << "tenants without regions share";
  EXPECT_THAT(access.RegionsOf(""), ElementsAre(0, 3));
  EXPECT_FALSE(access.Serves(1, "globex"));
  EXPECT_FALSE(access.Serves(0, "acme")) << "a tenant with regions of its own stays out of the shared ones";
  EXPECT_TRUE(access.Serves(2, "initech"));
  ASSERT_EQ(access.domains().size(), 3u);
  EXPECT_THAT(access.domains()[0], ElementsAre(0, 3)) << "the shared regions are domain 0";
  const size_t acme = *access.DomainOf("acme");
  const size_t initech = *access.DomainOf("initech");
  EXPECT_NE(acme, initech) << "a region two tenants share is registered once for each of them";
  EXPECT_THAT(access.domains()[acme], ElementsAre(1, 2));
  EXPECT_THAT(access.domains()[initech], ElementsAre(2));
  EXPECT_EQ(access.DomainOf("globex"), std::optional<size_t>(0));
  EXPECT_EQ(access.DomainFor("initech", 2), std::optional<size_t>(initech));
  EXPECT_EQ(access.DomainFor("globex", 1), std::optional<size_t>(acme)) << "an operator's view of acme's region";
}

TEST(RegionAccessTest, WithoutDedicatedRegionsEverythingIsOneDomain) {
  RegionAccess access(3);
  EXPECT_FALSE(access.HasDedicated());
  ASSERT_EQ(access.domains().size(), 1u);
  EXPECT_THAT(access.domains()[0], ElementsAre(0, 1, 2));
  EXPECT_EQ(access.DomainOf("anyone"), std::optional<size_t>(0));
}

TEST(RegionAccessTest, EveryRegionDedicatedLeavesOthersWithout) {
  RegionAccess access({{"acme"}});
  EXPECT_TRUE(access.RegionsOf("globex").empty());
  EXPECT_EQ(access.DomainOf("globex"), std::nullopt);
  ASSERT_EQ(access.domains().size(), 1u);
}

// The daemon gives a dedicated region's file its owner and mode, at creation (no window
// with looser bits) and again at every start; another user then cannot map it.
TEST(RegionFileAccessTest, OwnerAndModeKeepOtherUsersOut) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: sets a file's owner and runs a process as another user";
  // Under /dev/shm, which every user may enter (the test's own directory is root's).
  const std::string path = absl::StrCat("/dev/shm/sparsepool-test-dedicated-", getpid());
  unlink(path.c_str());
  auto spec = ParseRegionSpec(absl::StrCat("shm:", path, ":1MiB,tenant=acme,owner=65534"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  {
    auto region = MappedRegion::OpenOrCreate(*spec);
    ASSERT_TRUE(region.ok()) << region.status();
  }
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "a dedicated region defaults to owner-only";

  // Loosened by hand: the next start tightens it again.
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  ASSERT_TRUE(MappedRegion::OpenOrCreate(*spec).ok());
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // A process of another user (uid 65533) cannot open it; one of the owner can.
  auto open_as = [&](uid_t uid) {
    const pid_t pid = fork();
    if (pid == 0) {
      if (setgid(65534) != 0 || setuid(uid) != 0) _exit(3);
      const int fd = open(path.c_str(), O_RDWR);
      _exit(fd >= 0 ? 0 : (errno == EACCES ? 1 : 2));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(open_as(65533), 1) << "another user gets EACCES";
  EXPECT_EQ(open_as(65534), 0) << "the tenant's workers (the owner) map it";
  unlink(path.c_str());
}

// A file someone else made first (who may hold it open) is not taken over as a
// dedicated region, nor is a symbolic link followed or a hard-linked file used.
TEST(RegionFileAccessTest, ADedicatedRegionIsNotTakenOverFromSomeoneElse) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: makes a file as another user";
  const std::string path = absl::StrCat("/dev/shm/sparsepool-test-squatted-", getpid());
  unlink(path.c_str());
  {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0666);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fchown(fd, 65533, 65533), 0);  // made by another user, who keeps it open
    close(fd);
  }
  auto spec = ParseRegionSpec(absl::StrCat("shm:", path, ":1MiB,tenant=acme,owner=65534"));
  ASSERT_TRUE(spec.ok());
  auto refused = MappedRegion::OpenOrCreate(*spec);
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("belongs to uid 65533"));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65533u) << "nothing was changed";
  EXPECT_EQ(st.st_size, 0) << "nothing was written";
  unlink(path.c_str());

  const std::string target = path + "-target";
  ASSERT_EQ(symlink(target.c_str(), path.c_str()), 0);
  EXPECT_FALSE(MappedRegion::OpenOrCreate(*spec).ok()) << "a symbolic link is not followed";
  EXPECT_NE(access(target.c_str(), F_OK), 0);
  unlink(path.c_str());

  const std::string other = path + "-other";
  auto shared = ParseRegionSpec(absl::StrCat("shm:", path, ":1MiB"));
  ASSERT_TRUE(MappedRegion::OpenOrCreate(*shared).ok());
  ASSERT_EQ(link(path.c_str(), other.c_str()), 0);
  auto linked = MappedRegion::OpenOrCreate(*shared);
  EXPECT_THAT(std::string(linked.status().message()), HasSubstr("hard links"));
  unlink(other.c_str());
  unlink(path.c_str());
}

TEST(RegionFileAccessTest, AnOwnerTheDaemonCannotSetIsAClearError) {
  if (geteuid() == 0) GTEST_SKIP() << "root may give a file to anyone";
  const std::string path = absl::StrCat(testing::TestTempDir(), "/not-mine");
  unlink(path.c_str());
  auto spec = ParseRegionSpec(absl::StrCat("shm:", path, ":1MiB,owner=0"));
  ASSERT_TRUE(spec.ok());
  auto refused = MappedRegion::OpenOrCreate(*spec);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("owner 0"));
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "no half-made region is left";
}

}  // namespace
}  // namespace sparsepool
