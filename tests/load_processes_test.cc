// The load tool's process helpers: Spawn's environment, stdin and output; a command run
// to completion, and its failure named; the cap on a tenant's workers' share of the SMs
// under MPS; MPS refused saying why where it cannot start.
#include "bench/load_processes.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/gpu_mps.h"
#include "common/file_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool::bench {
namespace {

using ::testing::HasSubstr;

std::string TestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

TEST(LoadProcessesTest, SpawnReplacesAndAddsEnvironmentEntriesAndReadsItsStdin) {
  const std::string dir = TestDir();
  const std::string in = dir + "/spawn-in", out = dir + "/spawn-out";
  ASSERT_TRUE(WriteFileTextAtomically(in, "from stdin\n").ok());
  unlink(out.c_str());
  setenv("SPARSEPOOL_SPAWN_TEST_OLD", "parent", 1);
  SpawnOptions options;
  options.log_path = out;
  options.stdin_path = in;
  options.env = {"SPARSEPOOL_SPAWN_TEST_OLD=child", "SPARSEPOOL_SPAWN_TEST_NEW=added"};
  // "sh" without a slash: looked up on PATH.
  ASSERT_TRUE(RunToCompletion({"sh", "-c",
                               "echo old=$SPARSEPOOL_SPAWN_TEST_OLD new=$SPARSEPOOL_SPAWN_TEST_NEW; "
                               "env | grep -c '^SPARSEPOOL_SPAWN_TEST_OLD='; cat"},
                              options)
                  .ok());
  absl::StatusOr<std::string> text = ReadFileText(out, "the output");
  ASSERT_TRUE(text.ok()) << text.status();
  // The replaced entry is there once, with the child's value; ours is unchanged.
  EXPECT_EQ(*text, "old=child new=added\n1\nfrom stdin\n");
  EXPECT_STREQ(std::getenv("SPARSEPOOL_SPAWN_TEST_OLD"), "parent");
  unsetenv("SPARSEPOOL_SPAWN_TEST_OLD");
}

TEST(LoadProcessesTest, ACommandThatFailsIsNamedWithItsExitStatus) {
  SpawnOptions options;
  options.log_path = TestDir() + "/fail-log";
  absl::Status s = RunToCompletion({"sh", "-c", "exit 3"}, options);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("\"sh -c exit 3\" failed (exit status 3; see " + options.log_path + ")"));
  absl::Status missing = RunToCompletion({"sparsepool-no-such-program"});
  EXPECT_THAT(missing.message(), HasSubstr("cannot start sparsepool-no-such-program"));
}

TEST(LoadProcessesTest, ATenantsWorkersShareItsEqualPartOfTheSms) {
  EXPECT_EQ(TenantWorkerSmPercentage(2, 1), 50);   // the quiet tenant's one worker
  EXPECT_EQ(TenantWorkerSmPercentage(2, 4), 12);   // 4 x 12% = 48% in all, never more than its half
  EXPECT_EQ(TenantWorkerSmPercentage(2, 31), 1);   // at least 1%
  EXPECT_EQ(TenantWorkerSmPercentage(3, 1), 33);
  EXPECT_EQ(TenantWorkerSmPercentage(1, 1), 100);  // alone: no cap
  EXPECT_EQ(TenantWorkerSmPercentage(0, 5), 100);
}

TEST(LoadProcessesTest, MpsThatCannotStartIsRefusedSayingWhy) {
  if (RunToCompletion({"sh", "-c", "command -v nvidia-cuda-mps-control"}).ok()) {
    GTEST_SKIP() << "nvidia-cuda-mps-control is on PATH here: this test is for hosts without it";
  }
  absl::StatusOr<std::unique_ptr<GpuMps>> mps = GpuMps::Start(TestDir());
  ASSERT_FALSE(mps.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(mps.status()));
  EXPECT_THAT(mps.status().message(), HasSubstr("cannot start CUDA MPS"));
  EXPECT_THAT(mps.status().message(), HasSubstr("nvidia-cuda-mps-control"));
}

}  // namespace
}  // namespace sparsepool::bench
