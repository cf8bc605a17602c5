// RatePacer: the waits it hands out at given times (exact), and a real stream held to
// its rate (a lower bound only: a loaded machine can make it slower, never faster).
#include "common/rate_pacer.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(RatePacerTest, TheFirstCallGoesAtOnceAndTheNextWaitsForItsPay) {
  RatePacer pacer(/*bytes_per_second=*/1000, absl::ZeroDuration());
  EXPECT_EQ(pacer.Reserve(500, kT0), absl::ZeroDuration());
  EXPECT_EQ(pacer.Reserve(500, kT0), absl::Milliseconds(500));
  EXPECT_EQ(pacer.Reserve(1, kT0 + absl::Milliseconds(200)), absl::Milliseconds(800));
  // After an idle stretch the stream starts afresh: no credit for the idle time.
  EXPECT_EQ(pacer.Reserve(2000, kT0 + absl::Seconds(10)), absl::ZeroDuration());
  EXPECT_EQ(pacer.Reserve(1, kT0 + absl::Seconds(10)), absl::Seconds(2));
}

TEST(RatePacerTest, TheToleranceLetsABurstRunAheadOfItsPay) {
  RatePacer pacer(1000, absl::Milliseconds(300));
  EXPECT_EQ(pacer.Reserve(200, kT0), absl::ZeroDuration());
  EXPECT_EQ(pacer.Reserve(200, kT0), absl::ZeroDuration());  // 200 ms ahead: within 300
  EXPECT_EQ(pacer.Reserve(200, kT0), absl::Milliseconds(100));  // 400 ms ahead: 100 past
}

TEST(RatePacerTest, CallersOnManyThreadsShareOneRate) {
  RatePacer pacer(1000, absl::ZeroDuration());
  std::vector<absl::Duration> waits(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { waits[t] = pacer.Reserve(250, kT0); });
  for (std::thread& t : threads) t.join();
  std::sort(waits.begin(), waits.end());
  EXPECT_EQ(waits, (std::vector<absl::Duration>{absl::ZeroDuration(), absl::Milliseconds(250), absl::Milliseconds(500),
                                                absl::Milliseconds(750)}));
}

TEST(RatePacerTest, AStreamOfAcquiresTakesAtLeastItsPay) {
  RatePacer pacer(/*bytes_per_second=*/10'000'000, absl::ZeroDuration());
  const absl::Time start = absl::Now();
  absl::Duration waited;
  for (int i = 0; i < 5; ++i) waited += pacer.Acquire(1'000'000);  // 0.1 s each, the first paid after
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(399));
  // A sleep that ran long shortens the next wait: the waits add up to at most the pay.
  EXPECT_GT(waited, absl::ZeroDuration());
  EXPECT_LE(waited, absl::Milliseconds(400));
}

// A pacer's file on /dev/shm (a tmpfs, as a pacer's must be), removed at the end.
class SharedPacerFile {
 public:
  explicit SharedPacerFile(const std::string& name)
      : path_(absl::StrCat("/dev/shm/sparsepool-test-", name, "-", getpid())) {
    unlink(path_.c_str());
  }
  ~SharedPacerFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
};

// Pacers that open one file book on one stream, in one process or several: the rate
// is theirs together.
TEST(RatePacerTest, PacersSharingAFileShareOneRateAcrossProcesses) {
  SharedPacerFile file("pacer-shared");
  auto first = RatePacer::OpenShared(file.path(), 1000, absl::ZeroDuration());
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = RatePacer::OpenShared(file.path(), 1000, absl::ZeroDuration());
  ASSERT_TRUE(second.ok()) << second.status();
  struct stat st;
  ASSERT_EQ(stat(file.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "made for its owner alone";
  EXPECT_EQ((*first)->Reserve(500, kT0), absl::ZeroDuration());
  EXPECT_EQ((*second)->Reserve(500, kT0), absl::Milliseconds(500)) << "waits for the first's";
  // Another process books 1000 bytes (a second) on it: the next here waits for that too.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto own = RatePacer::OpenShared(file.path(), 1000, absl::ZeroDuration());
    _exit(own.ok() && (*own)->Reserve(1000, kT0) == absl::Seconds(1) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the other process's wait was not after ours";
  EXPECT_EQ((*first)->Reserve(1, kT0), absl::Seconds(2));
  // A pacer of its own shares nothing.
  RatePacer own(1000, absl::ZeroDuration());
  EXPECT_EQ(own.Reserve(1, kT0), absl::ZeroDuration());
}

TEST(RatePacerTest, AFileThatIsNotAPacersIsRefusedAndLeftAlone) {
  SharedPacerFile other_size("pacer-other-size");
  std::ofstream(other_size.path()) << "not a pacer, and longer than nothing";
  auto refused = RatePacer::OpenShared(other_size.path(), 1000, absl::ZeroDuration());
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("not a pacer's 128"));

  SharedPacerFile other_magic("pacer-other-magic");
  std::ofstream(other_magic.path()) << std::string(128, 'x');
  ASSERT_EQ(chmod(other_magic.path().c_str(), 0600), 0);  // this user's alone: only its magic is wrong
  refused = RatePacer::OpenShared(other_magic.path(), 1000, absl::ZeroDuration());
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("is not a sparsepool pacer file"));
  std::ifstream in(other_magic.path());
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, std::string(128, 'x')) << "nothing written into it";

  EXPECT_FALSE(RatePacer::OpenShared("/dev/shm", 1000, absl::ZeroDuration()).ok()) << "a directory";

  SharedPacerFile link("pacer-link");
  ASSERT_EQ(symlink(other_magic.path().c_str(), link.path().c_str()), 0);
  refused = RatePacer::OpenShared(link.path(), 1000, absl::ZeroDuration());
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("is a symbolic link"));

  SharedPacerFile fifo("pacer-fifo");
  ASSERT_EQ(mkfifo(fifo.path().c_str(), 0600), 0);
  refused = RatePacer::OpenShared(fifo.path(), 1000, absl::ZeroDuration());
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("is not a regular file"));

  // Others may write it: it could hold any time.
  SharedPacerFile shared_with_others("pacer-writable");
  ASSERT_TRUE(RatePacer::OpenShared(shared_with_others.path(), 1000, absl::ZeroDuration()).ok());
  ASSERT_EQ(chmod(shared_with_others.path().c_str(), 0666), 0);
  refused = RatePacer::OpenShared(shared_with_others.path(), 1000, absl::ZeroDuration());
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("with mode 0666"));

  // Off a tmpfs its time would outlive the boot (the test's own directory is on disk
  // here; skipped where it is a tmpfs).
  const std::string on_disk = absl::StrCat(testing::TempDir(), "/pacer-on-disk");
  refused = RatePacer::OpenShared(on_disk, 1000, absl::ZeroDuration());
  unlink(on_disk.c_str());
  if (!refused.ok()) EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("is not on a tmpfs"));
}

// A time the file holds from another clock (further ahead than any booking could be)
// is not waited for: the stream starts afresh.
TEST(RatePacerTest, ATimeFromAnotherClockIsNotWaitedFor) {
  SharedPacerFile file("pacer-other-clock");
  auto wall = RatePacer::OpenShared(file.path(), 1000, absl::ZeroDuration());
  ASSERT_TRUE(wall.ok()) << wall.status();
  (*wall)->Reserve(1000, absl::Now());  // a wall-clock time, decades past the monotonic clock's
  auto monotonic = RatePacer::OpenShared(file.path(), 1000, absl::ZeroDuration());
  ASSERT_TRUE(monotonic.ok());
  EXPECT_EQ((*monotonic)->Acquire(1), absl::ZeroDuration());
  // A tolerance past an hour is taken as an hour, not an overflow.
  RatePacer unbounded(1000, absl::InfiniteDuration());
  EXPECT_EQ(unbounded.Reserve(1000, kT0), absl::ZeroDuration());
  EXPECT_EQ(unbounded.Reserve(uint64_t{1} << 62, kT0), absl::ZeroDuration());
  EXPECT_GT(unbounded.Reserve(1, kT0), absl::Hours(24)) << "a call's cost is bounded, not wrapped";
}

}  // namespace
}  // namespace sparsepool
