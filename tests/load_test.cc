// sparsepool-load against a real daemon: every worker process runs its decode stream,
// checks what it fetched, and the summary has a row per worker and one over all; a
// worker that cannot reach the daemon fails the run, saying why.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/child_process.h"
#include "tests/daemon_process.h"
#include "tests/ucx_loopback.h"

namespace sparsepool {
namespace {

using ::testing::HasSubstr;

// The path the tool's output names right after `said` (up to the next space); empty
// when it has not said it.
std::string PathSaidAfter(const std::string& output, const std::string& said) {
  const size_t at = output.find(said);
  if (at == std::string::npos) return "";
  const size_t begin = at + said.size();
  return output.substr(begin, output.find(' ', begin) - begin);
}

TEST(LoadTest, EveryWorkerRunsItsStreamAndTheSummaryCountsThemAll) {
  testing::DaemonProcess daemon("load-test");
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  const std::string out = absl::StrCat(testing::TestTempDir(), "/load-out");
  testing::CommandResult run = testing::RunCommand(
      {"bench/sparsepool_load", absl::StrCat("--address=", daemon.address()), "--workers=3", "--seconds=2",
       "--requests=2", "--context=1024", "--layers=2", "--k=128", "--churn=4", absl::StrCat("--out=", out)});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::vector<std::string> tables = absl::StrSplit(run.output, "Where the workers' time went:");
  ASSERT_EQ(tables.size(), 2u) << run.output;
  int worker_rows = 0;
  uint64_t all_steps = 0;
  double all_p50_us = 0;
  for (absl::string_view line : absl::StrSplit(tables[0], '\n')) {
    if (!absl::StartsWith(line, "| ") || absl::StartsWith(line, "| worker")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, " | ");
    ASSERT_GE(cells.size(), 10u) << line;
    uint64_t steps = 0, checked = 0;
    ASSERT_TRUE(absl::SimpleAtoi(cells[1], &steps)) << line;
    ASSERT_TRUE(absl::SimpleAtoi(absl::StripSuffix(cells[9], " |"), &checked)) << line;
    EXPECT_GT(steps, 4u) << line << ": the stream stepped, and requests were replaced";
    EXPECT_EQ(checked, steps * 2 * 2) << line << ": two entries per request and step";
    if (!absl::StartsWith(line, "| all")) ++worker_rows;
    if (absl::StartsWith(line, "| all")) {
      all_steps = steps;
      ASSERT_TRUE(absl::SimpleAtod(cells[2], &all_p50_us)) << line;
    }
  }
  EXPECT_EQ(worker_rows, 3);
  EXPECT_THAT(run.output, HasSubstr("| all |"));
  // Where the time went: the same steps; phases that do not overlap (what is left over
  // is not negative); each step's wait for its fetch a part of it.
  std::vector<std::string> time_row;
  for (absl::string_view line : absl::StrSplit(tables[1], '\n')) {
    if (absl::StartsWith(line, "| all |")) time_row = absl::StrSplit(absl::StripSuffix(line, " |"), " | ");
  }
  ASSERT_EQ(time_row.size(), 14u) << tables[1];
  EXPECT_EQ(time_row[1], absl::StrCat(all_steps));
  std::vector<double> figures;
  for (size_t i = 2; i < time_row.size(); ++i) {
    double figure = 0;
    ASSERT_TRUE(absl::SimpleAtod(time_row[i], &figure)) << time_row[i];
    EXPECT_GE(figure, i == 9 ? -0.01 : 0.0) << "column " << i << " of " << tables[1];
    figures.push_back(figure);
  }
  EXPECT_GT(figures[1], 0.0) << "the steps took time";
  EXPECT_GT(figures[8], 0.0) << "the wait for the fetch";
  EXPECT_LE(figures[8], all_p50_us) << "the wait is a part of the step";
  // The plot: quantiles of every worker and of the whole run, drawn by gnuplot.
  std::ifstream quantiles(out + "/quantiles.csv");
  std::stringstream csv;
  csv << quantiles.rdbuf();
  EXPECT_THAT(csv.str(), HasSubstr("\nall,0.500000,"));
  EXPECT_THAT(csv.str(), HasSubstr("\nworker 2,1.000000,"));
  EXPECT_TRUE(std::ifstream(out + "/step_cdf.png").good()) << "gnuplot did not draw step_cdf.png";
  // Nothing stays behind: every worker released its requests.
  testing::CommandResult list = testing::RunCommand({"tools/sparsepoolctl", absl::StrCat("--address=", daemon.address()), "stats"});
  EXPECT_THAT(list.output, ::testing::ContainsRegex("sequences +0 live"));
}

// The fault table's rows: every fault injected, and each check clean with sequences
// compared byte for byte.
void ExpectEveryFaultChecked(const std::string& output, const std::vector<std::string>& faults) {
  for (const std::string& fault : faults) {
    bool found = false;
    for (absl::string_view line : absl::StrSplit(output, '\n')) {
      if (!absl::StartsWith(line, absl::StrCat("| ", fault, " |"))) continue;
      found = true;
      EXPECT_THAT(line, HasSubstr("| ok: ")) << line;
      EXPECT_THAT(line, ::testing::Not(HasSubstr(" 0 sequences byte-exact"))) << line;
    }
    EXPECT_TRUE(found) << fault << " has no row in:\n" << output;
  }
}

std::string DaemonLog(const std::string& out) {
  std::ifstream in(out + "/daemon.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Three workers, a fault every 2 s, each outage 1 s; with `tenants`, of two tenants the
// daemon serves (tokens, an operator for the checks). A short lease by default, so that
// a killed worker's sequences are reclaimed within the run.
std::vector<std::string> FaultRun(const std::string& out, const std::string& transport, const std::string& faults,
                                  bool tenants = false, absl::Duration lease_timeout = absl::Seconds(2)) {
  return {"bench/sparsepool_load",
          absl::StrCat("--daemon=service/sparsepoold --region=shm:/dev/shm/sparsepool-test-load-faults-", getpid(),
                       ":128MiB --lease_timeout=", absl::FormatDuration(lease_timeout),
                       transport == "ucx" ? " --ucx=true" : ""),
          absl::StrCat("--transport=", transport), tenants ? "--tenants=acme:1,globex:2" : "--workers=3",
          "--seconds=120", "--requests=2",
          "--context=1024", "--layers=2", "--k=128", "--churn=4", absl::StrCat("--faults=", faults),
          "--fault_interval=2s", "--outage=1s", "--rpc_timeout=2s", absl::StrCat("--out=", out)};
}

TEST(LoadTest, FaultsMidLoadLoseNothingAndEveryWorkerRidesThemOut) {
  const std::string out = absl::StrCat(testing::TestTempDir(), "/load-faults");
  testing::CommandResult run =
      testing::RunCommand(FaultRun(out, "cxl", "daemon-kill,worker-kill,fill", /*tenants=*/true));
  unlink(absl::StrCat("/dev/shm/sparsepool-test-load-faults-", getpid()).c_str());
  ASSERT_EQ(run.exit_code, 0) << run.output << "\nthe daemon's log:\n" << DaemonLog(out);
  ExpectEveryFaultChecked(run.output, {"daemon-kill", "worker-kill", "fill"});
  EXPECT_THAT(run.output, HasSubstr("| 2 | killed by the worker-kill fault"));
  // Two tenants, a row each: acme's one worker, globex's that survived.
  EXPECT_THAT(run.output, HasSubstr("| 0 (acme) | "));
  EXPECT_THAT(run.output, HasSubstr("| 1 (globex) | "));
  EXPECT_THAT(run.output, HasSubstr("| tenant acme | "));
  EXPECT_THAT(run.output, HasSubstr("| tenant globex | "));
  EXPECT_THAT(DaemonLog(out), HasSubstr("tenants"));
  EXPECT_THAT(run.output, ::testing::ContainsRegex("\\| fill \\| [0-9.]+ \\| filled with [1-9][0-9]* sequences"));
}

// Over UCX the workers' cached layouts name the dead daemon's worker and keys: they
// must reach the restarted one afresh.
TEST(LoadTest, UcxWorkersReachARestartedDaemonAfresh) {
  const std::string out = absl::StrCat(testing::TestTempDir(), "/load-faults-ucx");
  testing::UseUcxOnLoopback();
  testing::CommandResult run = testing::RunCommand(FaultRun(out, "ucx", "daemon-kill,daemon-kill"));
  unlink(absl::StrCat("/dev/shm/sparsepool-test-load-faults-", getpid()).c_str());
  ASSERT_EQ(run.exit_code, 0) << run.output << "\nthe daemon's log:\n" << DaemonLog(out);
  ExpectEveryFaultChecked(run.output, {"daemon-kill"});
}

// A network partition: the link between the workers and the daemon's host (a network
// namespace behind a veth pair) goes down for a second and comes back, twice. Over UCX
// every fetch and write crosses it: each worker carries on or fails a call within its
// deadline, and nothing is lost or mixed. The leases cross it too: a lease rides out a
// cut only with room for the renewal the cut held up and TCP's backed-off retransmission
// after it (a 2 s lease lost to a 1 s cut on a loaded CI machine), so these last 6 s.
TEST(LoadTest, UcxWorkersRideOutACutLinkToTheDaemon) {
  if (geteuid() != 0) GTEST_SKIP() << "net-cut needs root (a network namespace; the test command runs as root)";
  const std::string out = absl::StrCat(testing::TestTempDir(), "/load-net-cut");
  setenv("UCX_TLS", "tcp", 1);
  unsetenv("UCX_NET_DEVICES");  // across the veth to the daemon's namespace, not loopback
  testing::CommandResult run =
      testing::RunCommand(FaultRun(out, "ucx", "net-cut,net-cut", /*tenants=*/false, absl::Seconds(6)));
  unlink(absl::StrCat("/dev/shm/sparsepool-test-load-faults-", getpid()).c_str());
  ASSERT_EQ(run.exit_code, 0) << run.output << "\nthe daemon's log:\n" << DaemonLog(out);
  ExpectEveryFaultChecked(run.output, {"net-cut"});
  EXPECT_THAT(run.output, ::testing::ContainsRegex("\\| net-cut \\| [0-9.]+ \\| link to 198\\.1[89]\\.[0-9]+\\.2 down 1s, up"));
}

// CI's soak: a minute of churning streams, requests replaced every 4 steps and each
// worker's client (its lease and connections) every 300, the daemon's memory and
// descriptors flat.
TEST(LoadTest, AMinuteOfChurnLeavesTheDaemonFlat) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's quarantine grows the daemon's memory by design (up to 256 MiB): "
                  "the soak's leak check runs in the plain build";
#endif
  const std::string region = absl::StrCat("/dev/shm/sparsepool-test-load-soak-", getpid());
  testing::CommandResult run = testing::RunCommand(
      {"bench/sparsepool_load", absl::StrCat("--daemon=service/sparsepoold --region=shm:", region, ":256MiB"),
       "--workers=4", "--seconds=60", "--requests=2", "--context=2048", "--layers=2", "--k=256", "--churn=4",
       "--client_churn=300", "--soak", absl::StrCat("--out=", testing::TestTempDir(), "/load-soak")});
  unlink(region.c_str());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("against the last: flat"));
  EXPECT_THAT(run.output, ::testing::ContainsRegex("sampled every second \\(([5-9][0-9]|6[0-9]) samples\\)"));
}

// Ctrl-C: the workers stop after their step and report, the run ends with status 130
// and its partial results, and nothing the tool made is left behind: not the daemon, not
// the tenants' control groups (made when the test runs as root).
TEST(LoadTest, AnInterruptStopsTheRunAndLeavesNothingBehind) {
  const std::string out = absl::StrCat(testing::TestTempDir(), "/load-interrupted");
  const std::string region = absl::StrCat("/dev/shm/sparsepool-test-load-interrupt-", getpid());
  testing::ChildProcess run;
  ASSERT_TRUE(run.Start({"bench/sparsepool_load",
                         absl::StrCat("--daemon=service/sparsepoold --region=shm:", region, ":128MiB"),
                         "--tenants=a:1,b:1", geteuid() == 0 ? "--control=true" : "--control=false",
                         "--seconds=120", "--requests=2", "--context=1024", "--layers=2", "--k=128",
                         absl::StrCat("--out=", out)})
                  .ok());
  // Both workers are stepping once each has written its progress (every 16 steps), in
  // the directory the tool names.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  std::string workers_dir;
  while ((workers_dir = PathSaidAfter(run.Output(), "the workers' files are in ")).empty()) {
    ASSERT_LT(absl::Now(), give_up) << run.Output();
    ASSERT_FALSE(run.Poll().has_value()) << run.Output();
    absl::SleepFor(absl::Milliseconds(50));
  }
  while (!(std::ifstream(workers_dir + "/worker-0/progress").good() &&
           std::ifstream(workers_dir + "/worker-1/progress").good())) {
    ASSERT_LT(absl::Now(), give_up) << run.Output();
    ASSERT_FALSE(run.Poll().has_value()) << run.Output();
    absl::SleepFor(absl::Milliseconds(50));
  }
  const absl::Time interrupted = absl::Now();
  EXPECT_EQ(run.Signal(SIGINT), 130) << run.Output();
  EXPECT_LT(absl::Now() - interrupted, absl::Seconds(30)) << "the run took its time to stop";
  unlink(region.c_str());
  const std::string output = run.Output();
  EXPECT_THAT(output, HasSubstr("interrupted; stopping the workers"));
  EXPECT_THAT(output, HasSubstr("| tenant a | "));
  EXPECT_TRUE(std::ifstream(out + "/results.md").good());
  // The daemon the tool ran is gone (its log says it stopped), and so are the workers'
  // files.
  EXPECT_THAT(DaemonLog(out), HasSubstr("stopped"));
  EXPECT_FALSE(std::ifstream(workers_dir + "/worker-0/progress").good()) << workers_dir;
  struct stat gone;
  EXPECT_NE(stat(workers_dir.c_str(), &gone), 0) << workers_dir << " is still there";
  // The control groups (the cpu controller's, and v1's cpuset ones): named in the
  // summary's header, gone now.
  const std::string marker = "groups under ";
  if (const size_t at = output.find(marker); at != std::string::npos) {
    const std::string header = output.substr(at, output.find('(', at) - at);
    int groups = 0;
    for (absl::string_view word : absl::StrSplit(header, ' ')) {
      if (!absl::StrContains(word, "/sparsepool-load-")) continue;
      ++groups;
      EXPECT_NE(access(std::string(word).c_str(), F_OK), 0) << word << " is still there";
    }
    EXPECT_GE(groups, 1) << header;
  } else {
    EXPECT_NE(geteuid(), 0u) << "as root the run makes control groups:\n" << output;
  }
}

// A 3-second run of small requests with `tenant_flags` against a daemon of the tool's
// own, its region removed after; results in `out`.
testing::CommandResult PacedRun(const std::string& name, const std::string& out,
                                const std::vector<std::string>& tenant_flags) {
  const std::string region = absl::StrCat("/dev/shm/sparsepool-test-load-", name, "-", getpid());
  std::vector<std::string> argv = {"bench/sparsepool_load",
                                   absl::StrCat("--daemon=service/sparsepoold --region=shm:", region, ":128MiB"),
                                   "--seconds=3", "--requests=2", "--context=1024", "--layers=2", "--k=128",
                                   "--churn=4", absl::StrCat("--out=", out)};
  argv.insert(argv.end(), tenant_flags.begin(), tenant_flags.end());
  testing::CommandResult run = testing::RunCommand(argv);
  unlink(region.c_str());
  return run;
}

// --tenant_fetch_rate=NAME:RATE,...: each named tenant's fetches together held to its
// rate, split among its workers, so that no worker fetches faster than its share (and
// the one call each worker makes before its first wait); a tenant not named is not
// held. Upper bounds for the paced: a loaded machine makes the workers slower, never
// faster.
TEST(LoadTest, EachTenantsFetchesAreHeldToItsRate) {
  if (geteuid() != 0) GTEST_SKIP() << "the contention control's CPU groups need root";
  const std::string out = absl::StrCat(testing::TestTempDir(), "/load-paced");
  testing::CommandResult run = PacedRun("paced", out, {"--tenants=a:1,b:2,c:1", "--tenant_fetch_rate=a:1MiB,b:2MiB"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("each tenant's fetches paced (split among its workers): a 1.00 MiB/s, "
                                    "b 2.00 MiB/s, c unpaced"));
  std::ifstream csv(out + "/results.csv");
  std::string line;
  int workers = 0;
  constexpr double kCallBytes = 2 * 128 * 656;  // one layer of both requests
  while (std::getline(csv, line)) {
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    int worker = 0;
    double steps_per_s = 0, entries_per_s = 0, seconds_stepping = 3;
    // A worker's row is named by its index and tenant, "1 (b)"; the others are sums.
    if (cells.size() < 8 || !absl::SimpleAtoi(std::vector<std::string>(absl::StrSplit(cells[0], ' '))[0], &worker)) {
      continue;
    }
    ASSERT_TRUE(absl::SimpleAtod(cells[6], &steps_per_s) && absl::SimpleAtod(cells[7], &entries_per_s)) << line;
    EXPECT_GT(steps_per_s, 0) << line;
    ++workers;
    if (worker == 3) continue;  // c's: unpaced (the header says so), no bound to check
    const double share = 1 << 20;  // a's one worker, or either of b's two
    // Over the worker's own time, at least the run's seconds, it fetched at most its
    // share plus its first call (paid for after it went).
    EXPECT_LE(entries_per_s * 656, share * 1.01 + kCallBytes / seconds_stepping) << line;
  }
  EXPECT_EQ(workers, 4);
}

// --tenant_fetch_shared: a tenant's workers book on one pacer at its whole rate (a file
// in the run's directory), so together they keep to it, whichever of them fetches; a
// longer burst lets a step's layers through together. An upper bound again.
TEST(LoadTest, ATenantsWorkersCanShareOnePacer) {
  if (geteuid() != 0) GTEST_SKIP() << "the contention control's CPU groups need root";
  const std::string out = absl::StrCat(testing::TestTempDir(), "/load-shared-pacer");
  testing::CommandResult run = PacedRun(
      "shared-pacer", out,
      {"--tenants=a:1,b:3", "--tenant_fetch_rate=b:3MiB", "--tenant_fetch_shared", "--tenant_fetch_burst=5ms"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("each tenant's fetches paced (one pacer for its workers, bursts of 5ms): "
                                    "a unpaced, b 3.00 MiB/s"));
  std::ifstream csv(out + "/results.csv");
  bool found = false;
  for (std::string line; std::getline(csv, line);) {
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (cells.size() < 8 || cells[0] != "tenant b") continue;
    found = true;
    double entries_per_s = 0;
    ASSERT_TRUE(absl::SimpleAtod(cells[7], &entries_per_s)) << line;
    // The pacer holds the workers' fetches together to the rate over the stretch any
    // of them fetched; the row divides by the longest worker's own time, which is
    // shorter by how far their starts and ends were apart (a loaded machine's spread):
    // a 25% margin. Each worker at the whole rate would be 3x.
    constexpr double kRate = 3 << 20, kCallBytes = 2 * 128 * 656;
    EXPECT_LE(entries_per_s * 656, kRate * 1.25 + (kCallBytes + kRate * 0.005) / 3) << line;
    EXPECT_GT(entries_per_s, 0) << line;
  }
  EXPECT_TRUE(found) << run.output;
}

// A failed run keeps its workers' directory and names it: checked, then removed (this
// test's runs fail on purpose).
void ExpectWorkersDirectoryKeptAndRemoveIt(const std::string& output) {
  const std::string kept = PathSaidAfter(output, "the workers' ledgers and results are kept in ");
  ASSERT_FALSE(kept.empty()) << output;
  struct stat there;
  EXPECT_EQ(stat(kept.c_str(), &there), 0) << kept;
  std::error_code ignored;
  std::filesystem::remove_all(kept, ignored);
}

TEST(LoadTest, WorkersThatCannotReachTheDaemonFailTheRun) {
  testing::CommandResult run = testing::RunCommand(
      {"bench/sparsepool_load", "--address=127.0.0.1:1", "--workers=2", "--seconds=1",
       absl::StrCat("--out=", testing::TestTempDir(), "/load-unreachable")});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("sparsepool_load worker 0: UNAVAILABLE"));
  EXPECT_THAT(run.output, HasSubstr("worker(s) FAILED"));
  ExpectWorkersDirectoryKeptAndRemoveIt(run.output);
  // Bad flags: refused (exit 2), saying what was wrong.
  const std::vector<std::pair<std::vector<std::string>, std::string>> refusals = {
      {{"--workers=0"}, "bad argument --workers=0: 1 to 1024"},
      {{"--path=gpu", "--transport=ucx"}, "bad argument --path=gpu: the GPU path gathers from the mapped region"},
      {{"--cache_slots=4096"}, "the residency cache is the GPU path's"},
      {{"--reserve_tokens=4294967296"}, "bad argument --reserve_tokens=4294967296: 0 (the defaults) to 2147483647"},
      {{"--mps"}, "bad argument --mps=true: MPS serves the GPU path"},
      {{"--mps", "--path=gpu", "--tenants=quiet:1,flood:48"}, "at most 48 workers: MPS serves that many clients a GPU"},
      {{"--tenant_fetch_rate=1GiB", "--workers=2"},
       "bad argument --tenant_fetch_rate=1GiB: it paces tenants: give --tenants"},
      {{"--tenant_fetch_rate=fast", "--tenants=a:1"}, "\"fast\" is not bytes a second, e.g. 8GiB"},
      {{"--tenant_fetch_rate=a:1GiB,z:1GiB", "--tenants=a:1"}, "\"z\" is not one of --tenants"},
      {{"--tenant_fetch_rate=a:1GiB,a:2GiB", "--tenants=a:1"}, "\"a\" is named twice"},
      {{"--tenant_fetch_rate=a:", "--tenants=a:1"}, "\"a:\" is not NAME:RATE"},
      {{"--tenant_fetch_rate=a:1GiB,", "--tenants=a:1"}, "\"\" is not NAME:RATE"},
      {{"--tenant_fetch_rate=a1GiB,b:1GiB", "--tenants=a:1,b:1"}, "\"a1GiB\" is not NAME:RATE"},
      {{"--tenant_fetch_rate=1GiB", "--tenants=a:1", "--control=false"},
       "it is part of the contention control: drop --control=false"},
      {{"--tenant_fetch_shared", "--tenants=a:1"}, "bad argument --tenant_fetch_shared=true: it shares a tenant's rate"},
      {{"--tenant_fetch_burst=5ms", "--tenants=a:1"}, "bad argument --tenant_fetch_burst=5ms: it shapes a tenant's rate"},
      {{"--tenant_fetch_burst=-1ms", "--tenant_fetch_rate=1GiB", "--tenants=a:1"},
       "bad argument --tenant_fetch_burst=-1ms: 0 to 1h"},
      {{"--tenant_fetch_burst=inf", "--tenant_fetch_rate=1GiB", "--tenants=a:1"},
       "bad argument --tenant_fetch_burst=inf: 0 to 1h"},
      {{"--faults=daemon-kill,flood"}, "unknown fault \"flood\""},
  };
  for (const auto& [flags, says] : refusals) {
    std::vector<std::string> argv = {"bench/sparsepool_load"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    testing::CommandResult refused = testing::RunCommand(argv);
    EXPECT_EQ(refused.exit_code, 2) << absl::StrJoin(flags, " ") << ":\n" << refused.output;
    EXPECT_THAT(refused.output, HasSubstr(says)) << absl::StrJoin(flags, " ");
  }
  // daemon-kill needs a daemon the tool owns: said, and the run fails.
  testing::DaemonProcess daemon("load-test-not-owned");
  ASSERT_TRUE(daemon.Start().ok()) << daemon.Log();
  testing::CommandResult not_owned = testing::RunCommand(
      {"bench/sparsepool_load", absl::StrCat("--address=", daemon.address()), "--workers=2", "--seconds=30",
       "--context=256", "--layers=1", "--k=16", "--faults=daemon-kill", "--fault_interval=1s",
       absl::StrCat("--out=", testing::TestTempDir(), "/load-not-owned")});
  EXPECT_EQ(not_owned.exit_code, 1) << not_owned.output;
  EXPECT_THAT(not_owned.output, HasSubstr("daemon-kill needs a daemon the load tool owns (--daemon)"));
  ExpectWorkersDirectoryKeptAndRemoveIt(not_owned.output);
}

}  // namespace
}  // namespace sparsepool
