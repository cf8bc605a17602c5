// The load tool's process helpers: Spawn's environment, stdin and output; a command run
// to completion, and its failure named; the cap on a tenant's workers' share of the SMs
// under MPS; MPS refused saying why where it cannot start.
#include "bench/load_processes.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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

TEST(LoadProcessesTest, EnvironmentEntriesMustBeNameEqualsValue) {
  // Without '=', an entry would match (and drop) every variable of ours.
  for (const char* bad : {"CUDA_MPS_PIPE_DIRECTORY", "=value"}) {
    SpawnOptions options;
    options.env = {bad};
    absl::Status s = RunToCompletion({"true"}, options);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_THAT(s.message(), HasSubstr("is not NAME=VALUE"));
  }
  // A name that only begins like one of ours replaces nothing.
  const std::string out = TestDir() + "/spawn-prefix";
  unlink(out.c_str());
  setenv("SPARSEPOOL_SPAWN_TEST", "kept", 1);
  SpawnOptions options;
  options.log_path = out;
  options.env = {"SPARSEPOOL_SPAWN_TEST_X=added"};
  ASSERT_TRUE(RunToCompletion({"sh", "-c", "echo $SPARSEPOOL_SPAWN_TEST $SPARSEPOOL_SPAWN_TEST_X"}, options).ok());
  EXPECT_EQ(*ReadFileText(out, "the output"), "kept added\n");
  unsetenv("SPARSEPOOL_SPAWN_TEST");
}

TEST(LoadProcessesTest, ACommandPastItsTimeoutIsKilledAndSaysSo) {
  const absl::Time start = absl::Now();
  absl::Status s = RunToCompletion({"sleep", "30"}, {}, absl::Milliseconds(200));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("\"sleep 30\" did not finish within 200ms; killed"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(LoadProcessesTest, DefaultSignalsUnblockWhatTheParentBlocked) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  const std::string out = TestDir() + "/spawn-sigmask";
  for (bool reset : {false, true}) {
    unlink(out.c_str());
    SpawnOptions options;
    options.log_path = out;
    options.default_signals = reset;
    // grep itself, not through a shell: dash clears its mask at start.
    ASSERT_TRUE(RunToCompletion({"grep", "SigBlk", "/proc/self/status"}, options).ok());
    absl::StatusOr<std::string> text = ReadFileText(out, "the output");
    ASSERT_TRUE(text.ok());
    // SIGTERM is signal 15: bit 14 of the mask, 0x4000.
    EXPECT_EQ(absl::StrContains(*text, "0000000000004000"), !reset) << *text;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
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

TEST(LoadProcessesTest, AnMpsClientsCapIsAlwaysSet) {
  // An uncapped client names 100, so that a cap in our own environment cannot reach it.
  EXPECT_THAT(MpsClientEnvironment("/run/x", 100),
              ::testing::ElementsAre("CUDA_MPS_PIPE_DIRECTORY=/run/x/mps-pipe", "CUDA_MPS_LOG_DIRECTORY=/run/x/mps-log",
                                     "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=100"));
  EXPECT_EQ(MpsClientEnvironment("/run/x", 12).back(), "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=12");
  EXPECT_EQ(MpsClientEnvironment("/run/x", 0).back(), "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=1");
  EXPECT_EQ(MpsClientEnvironment("/run/x", 250).back(), "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=100");
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
