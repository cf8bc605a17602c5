// sparsepool-load: many decode streams at once against one daemon (issue 14). It starts
// --workers decode-worker processes (bench/load_worker.h), each with a client (and
// lease) of its own and --requests requests of its own, running decode steps as an
// engine would, with requests replaced every --churn steps. At the end: per-step
// latency per worker and over all (p50, p99, p99.9, max), steps and entries per second,
// bytes; a markdown table on stdout, results.md and results.csv in --out, a progress
// line on stderr while it runs.
//
// With --faults it injects faults while the workers run (bench/load_faults.h), each
// followed by a check of every live sequence against the workers' ledgers of what the
// pool acknowledged; the run fails when a byte was lost or mixed, a worker gave up, or
// a failing call outlived its deadline. daemon-kill needs --daemon: the load tool then
// starts the daemon itself (that command line plus --listen and --port_file), kills it
// and starts it again. net-cut (with --daemon, as root) runs the daemon on a host of its
// own, a network namespace behind a veth pair, and takes the link down and up.
//
// --tenants=NAME:WORKERS,... (with --daemon) makes the daemon serve those tenants (the
// tool writes its tenants file and a token per tenant, the checks' operator and the
// filler) and runs that many workers for each, in order; the summary gains a row per
// tenant.
//
//   sparsepool_load (--address=HOST:PORT | --daemon="sparsepoold --region=...") [--workers=8]
//       [--seconds=10] [--requests=4] [--context=8192] [--layers=4] [--k=2048]
//       [--churn=16] [--client_churn=0] [--transport=cxl|ucx] [--out=DIR]
//       [--faults=daemon-kill,worker-kill,fill,net-cut]
//       [--fault_interval=3s] [--outage=1s] [--rpc_timeout=10s] [--recover_seconds=30] [--soak]
//
// --soak (with --daemon) samples the daemon's anonymous memory and open descriptors
// every second and fails the run when they grow from a quarter of the way in to the
// end (bench/load_soak.h): the leak check of a long run.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/bench_report.h"
#include "bench/gpu_mps.h"
#include "bench/load_faults.h"
#include "bench/load_plots.h"
#include "bench/load_processes.h"
#include "bench/load_soak.h"
#include "bench/load_time_table.h"
#include "bench/load_worker.h"
#include "bench/tenant_cpu_groups.h"
#include "bench/median.h"
#include "bench/progress_line.h"
#include "common/command_line.h"
#include "common/units.h"
#include "service/tenants.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT), unless --daemon");
ABSL_FLAG(std::string, daemon, "",
          "a daemon command line the tool runs itself (adding --listen and --port_file), kills and restarts for "
          "daemon-kill, and watches with --soak; e.g. \"sparsepoold --region=shm:load:4GiB\"");
ABSL_FLAG(std::string, out, "sparsepool-load-out",
          "directory for results.md, results.csv, plots and logs (the workers' own files go to a directory of the run's "
          "own on /dev/shm, removed at the end)");
ABSL_FLAG(std::string, transport, "cxl", "the workers' data plane: cxl (load/store on the mapped region) or ucx");
ABSL_FLAG(std::string, path, "cpu",
          "the workers' step: cpu (WriteStep and FetchTopK, copies on the host) or gpu (a decode session per worker, "
          "each step one captured CUDA graph gathering into HBM; transport cxl, a CUDA device)");
ABSL_FLAG(uint32_t, cache_slots, 0, "with --path=gpu: the GPU residency cache's slots per request and layer (0: none)");
ABSL_FLAG(uint64_t, reserve_tokens, 0,
          "tokens reserved in the pool ahead of each request's need: the client's ClientOptions::reserve_tokens on the "
          "CPU path, the decode session's on the GPU path (0: their defaults, 256 and 1024). A small reserve lets a "
          "daemon outage or a full pool reach the steps (GPU rows out of room leave and join again)");
ABSL_FLAG(int, workers, 8, "decode-worker processes, 1 to 1024 (with --tenants: their sum instead)");
ABSL_FLAG(double, seconds, 10, "how long each worker runs its steps, seconds");
ABSL_FLAG(int, requests, 4, "requests (sequences) each worker decodes at once");
ABSL_FLAG(uint64_t, context, 8192, "tokens of each request's context when it joins");
ABSL_FLAG(uint32_t, layers, 4, "layers per sequence (one top-k fetch per layer and step)");
ABSL_FLAG(uint32_t, k, 2048, "entries each layer's fetch selects (top-k)");
ABSL_FLAG(int, churn, 16, "a worker replaces one of its requests every this many steps");
ABSL_FLAG(int, client_churn, 0,
          "a worker replaces its client (a new id, lease and connections; its requests released and taken anew) "
          "every this many steps; 0: never. Not with --faults, whose checks follow each worker's one client");
ABSL_FLAG(absl::Duration, rpc_timeout, absl::Seconds(10), "every call's deadline in the workers");
ABSL_FLAG(double, recover_seconds, 30, "how long a worker keeps retrying an unavailable daemon, seconds");
ABSL_FLAG(std::string, faults, "",
          "faults injected in turn while the workers run, each followed by a check: daemon-kill, worker-kill, fill, "
          "net-cut (comma-separated; net-cut runs the daemon in a network namespace of its own: root)");
ABSL_FLAG(absl::Duration, fault_interval, absl::Seconds(3), "time between faults");
ABSL_FLAG(absl::Duration, outage, absl::Seconds(1), "how long a killed daemon stays down");
ABSL_FLAG(std::string, tenants, "",
          "NAME:WORKERS,...: the daemon (--daemon) serves these tenants and each runs that many workers");
ABSL_FLAG(bool, control, true,
          "contention control: with --tenants, each tenant's workers in a CPU control group of its own with equal "
          "weight (root; bench/tenant_cpu_groups.h), and the owned daemon's creates and growths in tenants' turns. "
          "false: neither (the daemon gets --slow_work_threads=0), the run to compare with");
ABSL_FLAG(bool, tenant_cores, true,
          "with --control and --tenants: each tenant's group also gets cores of its own (cores / tenants, where the "
          "cpuset controller is there), not only its share of CPU time on cores all tenants share");
ABSL_FLAG(std::string, tenant_fetch_rate, "",
          "with --control and --tenants: RATE, each tenant's fetches together paced at RATE bytes a second (\"8GiB\": "
          "8 GiB/s), or NAME:RATE,..., each named tenant at its own rate and the others unpaced; a tenant's rate is "
          "split evenly among its workers (ClientOptions::fetch_bytes_per_second; on the GPU path the decode session "
          "books each step's top-k): a tenant's share of the host's memory bandwidth and the GPU's link where the "
          "hardware cannot divide them (no resctrl). Empty: unpaced");
ABSL_FLAG(bool, tenant_fetch_shared, false,
          "with --tenant_fetch_rate: each tenant's workers book on one pacer (a file in the run's directory, "
          "ClientOptions::fetch_pacer_file) at the tenant's whole rate, taking it as each one's demand goes, instead of "
          "each holding a fixed part of it");
ABSL_FLAG(absl::Duration, tenant_fetch_burst, absl::Milliseconds(1),
          "with --tenant_fetch_rate: how far ahead of its rate a pacer's fetches may run (ClientOptions::fetch_burst): "
          "a longer one lets a stream's bursts (a step's layers, steps back to back) through while its average keeps "
          "to the rate");
ABSL_FLAG(bool, mps, false,
          "with --path=gpu: the workers' kernels run side by side under CUDA MPS (a control daemon of the tool's own, "
          "with private pipe and log folders) instead of time-sliced between their contexts; with --control and "
          "--tenants each tenant's workers together are capped at its equal share of the SMs");
ABSL_FLAG(bool, soak, false,
          "sample the owned daemon's anonymous memory and descriptors every second; fail when they grow");
// Set by the tool for its worker processes.
ABSL_FLAG(int, worker_index, -1, "internal: the worker this process is (set by the tool)");
ABSL_FLAG(std::string, worker_dir, "", "internal: where the workers keep their files (set by the tool)");
ABSL_FLAG(std::string, tenant, "", "internal: the worker's tenant (set by the tool)");
ABSL_FLAG(std::string, token_file, "", "internal: the file holding the worker's tenant token (set by the tool)");
ABSL_FLAG(uint64_t, fetch_bytes_per_second, 0, "internal: the worker's fetch rate, its share of --tenant_fetch_rate");
ABSL_FLAG(std::string, fetch_pacer_file, "", "internal: the pacer the worker's tenant shares (set by the tool)");

namespace sparsepool::bench {
namespace {

struct Options {
  LoadWorkerOptions worker;
  int workers = 8;
  int worker_index = -1;  // set in the worker processes
  std::string out;        // --out: results and logs
  std::string daemon;     // a daemon command line the tool runs itself
  std::vector<LoadFault> faults;
  absl::Duration fault_interval = absl::Seconds(3);
  absl::Duration outage = absl::Seconds(1);
  bool soak = false;  // sample the owned daemon's footprint and fail if it grows
  bool control = true;  // --control
  bool tenant_cores = true;  // --tenant_cores
  // --tenant_fetch_rate: bytes a second by tenant (a tenant not here is unpaced).
  std::map<std::string, uint64_t> tenant_fetch_rates;
  bool tenant_fetch_shared = false;  // --tenant_fetch_shared
  bool mps = false;      // --mps
  // Tenants and how many workers each runs, in worker order (--tenants); the daemon
  // then serves them (the tool writes its tenants file and every token).
  std::vector<std::pair<std::string, int>> tenants;
};

// "NAME:WORKERS,NAME:WORKERS": false when malformed.
bool ParseTenants(const std::string& value, std::vector<std::pair<std::string, int>>& out) {
  out.clear();
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    std::vector<std::string> name_count = absl::StrSplit(part, ':');
    int n = 0;
    if (name_count.size() != 2 || name_count[0].empty() || !absl::SimpleAtoi(name_count[1], &n) || n <= 0) {
      return false;
    }
    out.emplace_back(name_count[0], n);
  }
  return !out.empty();
}

// --tenant_fetch_rate: "RATE" for every tenant, or "NAME:RATE,..." for the tenants named
// (each of `tenants`, once). InvalidArgument saying what was wrong.
absl::Status ParseTenantFetchRates(const std::string& value, const std::vector<std::pair<std::string, int>>& tenants,
                                   std::map<std::string, uint64_t>& out) {
  out.clear();
  const auto parse_rate = [](absl::string_view text) -> absl::StatusOr<uint64_t> {
    absl::StatusOr<uint64_t> bytes = ParseByteSize(text);
    if (!bytes.ok() || *bytes == 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not bytes a second, e.g. 8GiB"));
    }
    return bytes;
  };
  if (!absl::StrContains(value, ':')) {
    absl::StatusOr<uint64_t> rate = parse_rate(value);
    if (!rate.ok()) return rate.status();
    for (const auto& [name, count] : tenants) out[name] = *rate;
    return absl::OkStatus();
  }
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    std::vector<absl::string_view> name_rate = absl::StrSplit(part, absl::MaxSplits(':', 1));
    if (name_rate.size() != 2 || name_rate[0].empty() || name_rate[1].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", part, "\" is not NAME:RATE"));
    }
    const std::string name(name_rate[0]);
    if (std::none_of(tenants.begin(), tenants.end(), [&](const auto& t) { return t.first == name; })) {
      return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is not one of --tenants"));
    }
    absl::StatusOr<uint64_t> rate = parse_rate(name_rate[1]);
    if (!rate.ok()) return rate.status();
    if (!out.emplace(name, *rate).second) {
      return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is named twice"));
    }
  }
  return absl::OkStatus();
}

// 32 random hex digits from the kernel.
absl::StatusOr<std::string> RandomToken() {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  unsigned char bytes[16];
  if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes)) return absl::InternalError("cannot read /dev/urandom");
  std::string hex;
  for (unsigned char b : bytes) absl::StrAppendFormat(&hex, "%02x", b);
  return hex;
}

// A group's step times as the tables print them, from one sort (zeros for a group
// that completed no step).
struct StepFigures {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;
  explicit StepFigures(std::vector<double> step_us) {
    if (step_us.empty()) return;
    std::sort(step_us.begin(), step_us.end());
    p50 = PercentileOfSorted(step_us, 0.5);
    p99 = PercentileOfSorted(step_us, 0.99);
    p999 = PercentileOfSorted(step_us, 0.999);
    max = step_us.back();
  }
};

std::string Row(const std::string& name, const LoadWorkerResult& r, const StepFigures& f) {
  const double s = r.elapsed_s > 0 ? r.elapsed_s : 1;
  return absl::StrFormat("| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f M | %s/s | %d | %d |\n", name,
                         r.step_us.size(), f.p50, f.p99, f.p999, f.max, r.step_us.size() / s, r.entries / s / 1e6,
                         FormatBytes(static_cast<uint64_t>(r.entries * kLoadEntryBytes / s)), r.checked,
                         r.progress.errors);
}

std::string CsvRow(const std::string& name, const LoadWorkerResult& r, const StepFigures& f) {
  const double s = r.elapsed_s > 0 ? r.elapsed_s : 1;
  return absl::StrFormat("%s,%d,%.1f,%.1f,%.1f,%.1f,%.2f,%.0f,%d,%d\n", name, r.step_us.size(), f.p50, f.p99, f.p999,
                         f.max, r.step_us.size() / s, r.entries / s, r.checked, r.progress.errors);
}

// Starts the workers, injects the faults, waits for the workers, sums up.
class Parent {
 public:
  Parent(const Options& o, int argc, char** argv) : o_(o), argv_(argv, argv + argc) {}

  int Run() {
    // `dir` takes the results and the logs (the daemon's, MPS's); the workers' own files
    // go to a directory of the run's own (`state`).
    const std::string& dir = o_.out;
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Fail(absl::StrCat("cannot make ", dir));
    absl::StatusOr<std::unique_ptr<RunDirectory>> run_directory = RunDirectory::Make(dir);
    if (!run_directory.ok()) return Fail(run_directory.status().ToString());
    run_directory_ = *std::move(run_directory);
    const std::string& state = run_directory_->path();
    std::fprintf(stderr, "sparsepool_load: the workers' files are in %s (removed at the end)\n", state.c_str());
    // First interrupt: the workers stop after their step, release their requests and
    // report; the run ends as usual (partial results, exit status 130). A second: they
    // are killed. Either way the daemon, the namespace and the control groups go.
    InterruptWatch interrupts([this, state](int count) {
      std::fprintf(stderr, "\nsparsepool_load: interrupted; %s\n",
                   count == 1 ? "stopping the workers (again to kill them)" : "killing the workers");
      if (count == 1) {
        (void)WriteFile(LoadStopFile(state), "stop\n");
      } else {
        // Only workers not reaped yet: a reaped one's pid may be another process's now.
        absl::MutexLock lock(&pids_mu_);
        for (size_t w = 0; w < pids_.size(); ++w) {
          if (w >= reaped_.size() || !reaped_[w]) kill(pids_[w], SIGKILL);
        }
      }
    });
    std::string address = o_.worker.address;
    if (o_.soak && o_.daemon.empty()) return Fail("--soak watches a daemon the load tool owns: give --daemon");
    std::vector<std::string> daemon_argv = absl::StrSplit(o_.daemon, ' ', absl::SkipEmpty());
    if (!o_.tenants.empty()) {
      if (o_.daemon.empty()) return Fail("--tenants makes the daemon serve them: give --daemon");
      if (absl::Status s = WriteTenants(daemon_argv); !s.ok()) return Fail(s.ToString());
    }
    const bool cuts_the_network =
        std::find(o_.faults.begin(), o_.faults.end(), LoadFault::kNetCut) != o_.faults.end();
    if (cuts_the_network) {
      if (o_.daemon.empty()) return Fail("net-cut cuts the link to a daemon the load tool owns: give --daemon");
      if (!o_.tenants.empty()) {
        return Fail("net-cut puts the daemon off loopback, where tenants' tokens would need TLS: run it without "
                    "--tenants");
      }
      absl::StatusOr<std::unique_ptr<DaemonNetwork>> network = DaemonNetwork::Create(dir + "/network.log");
      if (!network.ok()) return Fail(network.status().ToString());
      network_ = *std::move(network);
    }
    if (!o_.control && !o_.daemon.empty()) daemon_argv.push_back("--slow_work_threads=0");
    if (o_.control && !o_.tenants.empty()) {
      std::vector<std::string> names;
      for (const auto& [name, count] : o_.tenants) names.push_back(name);
      absl::StatusOr<std::unique_ptr<TenantCpuGroups>> groups = TenantCpuGroups::Create(names, o_.tenant_cores);
      if (!groups.ok()) return Fail(groups.status().ToString());
      cpu_groups_ = *std::move(groups);
    }
    if (o_.mps) {
      absl::StatusOr<std::unique_ptr<GpuMps>> mps = GpuMps::Start(dir);
      if (!mps.ok()) return Fail(mps.status().ToString());
      mps_ = *std::move(mps);
    }
    if (!o_.daemon.empty()) {
      daemon_ = std::make_unique<LoadDaemon>(daemon_argv, dir, network_.get());
      if (absl::Status s = daemon_->Start(); !s.ok()) return Fail(s.ToString());
      address = daemon_->address();
    }
    for (int w = 0; w < o_.workers; ++w) {
      std::vector<std::string> args = argv_;
      args[0] = "/proc/self/exe";
      args.push_back(absl::StrCat("--address=", address));  // the owned daemon's, when there is one
      args.push_back(absl::StrCat("--worker_index=", w));
      args.push_back(absl::StrCat("--worker_dir=", state));
      if (!o_.tenants.empty()) {
        args.push_back(absl::StrCat("--tenant=", TenantOf(w)));
        args.push_back(absl::StrCat("--token_file=", TokenFile(TenantOf(w))));
        if (auto rate = o_.tenant_fetch_rates.find(TenantOf(w)); o_.control && rate != o_.tenant_fetch_rates.end()) {
          if (o_.tenant_fetch_shared) {
            args.push_back(absl::StrCat("--fetch_bytes_per_second=", rate->second));
            args.push_back(absl::StrCat("--fetch_pacer_file=", state, "/pacer-", TenantOf(w)));
          } else {
            args.push_back(absl::StrCat("--fetch_bytes_per_second=",
                                        std::max<uint64_t>(1, rate->second / TenantEntryOf(w).second)));
          }
        }
      }
      SpawnOptions spawn;
      if (mps_ != nullptr) spawn.env = mps_->ClientEnvironment(SmPercentageOf(w));
      absl::StatusOr<pid_t> pid = Spawn(args, spawn);
      if (!pid.ok()) {
        for (pid_t p : pids_) {
          kill(p, SIGKILL);
          waitpid(p, nullptr, 0);  // gone before the control groups are removed
        }
        return Fail(pid.status().ToString());
      }
      {
        absl::MutexLock lock(&pids_mu_);
        pids_.push_back(*pid);
        reaped_.push_back(false);
      }
      if (cpu_groups_ != nullptr) {
        if (absl::Status s = cpu_groups_->Add(TenantOf(w), *pid); !s.ok()) {
          for (pid_t p : pids_) {
            kill(p, SIGKILL);
            waitpid(p, nullptr, 0);
          }
          return Fail(s.ToString());
        }
      }
    }
    killed_.assign(o_.workers, false);

    std::vector<FaultRecord> faults;
    bool faults_failed = false;
    if (!o_.faults.empty()) {
      FaultRunOptions fo;
      fo.address = address;
      fo.dir = state;
      fo.interval = o_.fault_interval;
      fo.outage = o_.outage;
      fo.call_deadline = o_.worker.rpc_timeout;
      fo.interrupted = [&interrupts] { return interrupts.interrupted(); };
      if (!o_.tenants.empty()) {
        fo.operator_token = tokens_.at(kCheckerTenant);
        fo.filler_token = tokens_.at(kFillerTenant);
      }
      absl::StatusOr<std::vector<FaultRecord>> records =
          RunLoadFaults(fo, o_.faults, daemon_.get(), network_.get(), pids_, killed_);
      if (!records.ok()) {
        std::fprintf(stderr, "sparsepool_load: faults: %s\n", records.status().ToString().c_str());
        faults_failed = true;
      } else {
        faults = *std::move(records);
        for (const FaultRecord& r : faults) faults_failed |= !r.ok();
      }
      // The workers' time was only an upper bound: they stop once every fault is checked.
      if (absl::Status s = WriteFile(LoadStopFile(state), "stop\n"); !s.ok()) {
        // The workers then run their time out; they are waited for all the same.
        std::fprintf(stderr, "sparsepool_load: %s\n", s.ToString().c_str());
        faults_failed = true;
      }
    }
    const int failed = WaitForWorkers();
    if (daemon_ != nullptr) daemon_->Stop();
    const int status = Summarize(faults, failed, faults_failed);
    if (status != 0) {
      run_directory_->Keep();
      std::fprintf(stderr, "sparsepool_load: the workers' ledgers and results are kept in %s (their tenants' tokens "
                   "too: remove it when done)\n", state.c_str());
    }
    return interrupts.interrupted() ? 130 : status;
  }

 private:
  // Returns how many workers failed (killed ones do not count).
  int WaitForWorkers() {
    ProgressLine progress;
    int running = o_.workers, failed = 0, finished = 0;
    std::vector<bool> done(o_.workers, false);
    const absl::Time start = absl::Now();
    absl::Time next_sample = start;
    while (running > 0) {
      for (int w = 0; w < o_.workers; ++w) {
        int status = 0;
        if (done[w]) continue;
        {
          absl::MutexLock lock(&pids_mu_);  // reaped and marked before an interrupt's kill can see the pid
          if (waitpid(pids_[w], &status, WNOHANG) != pids_[w]) continue;
          reaped_[w] = true;
        }
        done[w] = true;
        --running;
        const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!killed_[w]) ++finished;
        if (!clean && !(killed_[w] && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) ++failed;
      }
      const uint64_t steps = TotalLoadProgress(run_directory_->path(), o_.workers).steps;
      progress.Show("load", absl::StrCat(o_.workers - running, "/", o_.workers, " workers done, ", steps, " steps"));
      if (o_.soak && finished == 0 && absl::Now() >= next_sample && daemon_->pid() > 0) {
        // Only until a worker ends its run: the end, when they release everything, is
        // not load (a killed worker does not end the sampling).
        if (absl::StatusOr<ProcessFootprint> f = FootprintOf(daemon_->pid()); f.ok()) {
          soak_.Add(absl::ToDoubleSeconds(absl::Now() - start), steps, *f);
        }
        next_sample += absl::Seconds(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (failed > 0) progress.Done("load", absl::StrCat(failed, " worker(s) FAILED"));
    return failed;
  }

  static constexpr char kCheckerTenant[] = "load-checker";  // an operator
  static constexpr char kFillerTenant[] = "load-filler";

  // The tenant `worker` belongs to: its name and how many workers it runs. REQUIRES:
  // tenants.
  const std::pair<std::string, int>& TenantEntryOf(int worker) const {
    for (const auto& tenant : o_.tenants) {
      if ((worker -= tenant.second) < 0) return tenant;
    }
    return o_.tenants.back();
  }
  const std::string& TenantOf(int worker) const { return TenantEntryOf(worker).first; }
  // With MPS, the cap on the share of the SMs of each worker of a tenant running
  // `tenant_workers`: its tenant's equal share divided among them, with the control on
  // and two or more tenants; else none (100).
  int SmPercentageOfTenant(int tenant_workers) const {
    if (!o_.control || o_.tenants.size() < 2) return 100;
    return TenantWorkerSmPercentage(static_cast<int>(o_.tenants.size()), tenant_workers);
  }
  int SmPercentageOf(int worker) const {
    return o_.tenants.empty() ? 100 : SmPercentageOfTenant(TenantEntryOf(worker).second);
  }
  std::string TokenFile(const std::string& tenant) const {
    return absl::StrCat(run_directory_->path(), "/token-", tenant);
  }

  // A token for every tenant, the filler and an operator (the checks), each in a file of
  // its own (mode 0600), their hashes in the daemon's tenants file.
  absl::Status WriteTenants(std::vector<std::string>& daemon_argv) {
    std::string file = "# written by sparsepool_load\n";
    std::vector<std::string> names = {kCheckerTenant, kFillerTenant};
    for (const auto& [name, count] : o_.tenants) names.push_back(name);
    for (const std::string& name : names) {
      absl::StatusOr<std::string> token = RandomToken();
      if (!token.ok()) return token.status();
      tokens_[name] = *token;
      const std::string path = TokenFile(name);
      if (absl::Status s = WriteFile(path, *token + "\n"); !s.ok()) return s;
      chmod(path.c_str(), 0600);
      absl::StrAppend(&file, name == kCheckerTenant ? "operator " : "tenant ", name,
                      " token_sha256=", TokenHashHex(*token), "\n");
    }
    const std::string path = absl::StrCat(run_directory_->path(), "/tenants");
    if (absl::Status s = WriteFile(path, file); !s.ok()) return s;
    daemon_argv.push_back(absl::StrCat("--tenants=", path));
    return absl::OkStatus();
  }

  int Summarize(const std::vector<FaultRecord>& faults, int failed, bool faults_failed) {
    if (failed > 0) return 1;
    LoadWorkerResult all;
    std::map<std::string, LoadWorkerResult> by_tenant;
    std::vector<std::string> names;
    std::vector<LoadWorkerResult> results;
    for (int w = 0; w < o_.workers; ++w) {
      if (killed_[w]) continue;
      absl::StatusOr<LoadWorkerResult> r = ReadLoadWorkerResult(LoadWorkerFile(run_directory_->path(), w, "result"));
      if (!r.ok()) return Fail(r.status().ToString());
      MergeLoadResult(*r, all);
      if (!o_.tenants.empty()) MergeLoadResult(*r, by_tenant[TenantOf(w)]);
      names.push_back(o_.tenants.empty() ? absl::StrCat(w) : absl::StrCat(w, " (", TenantOf(w), ")"));
      results.push_back(*std::move(r));
    }
    names.push_back("all");
    results.push_back(all);
    for (const auto& [name, count] : o_.tenants) {
      names.push_back(absl::StrCat("tenant ", name));
      results.push_back(by_tenant[name]);
    }
    const LoadWorkerOptions& wo = o_.worker;
    std::string header = absl::StrFormat(
        "sparsepool-load: %d workers, each a client with %d requests of %d tokens (%d layers, top-%d of %d-byte "
        "entries, one request replaced every %d steps), %s transport, %s path%s, %.1f s",
        o_.workers, wo.requests, wo.context, wo.layers, wo.k, kLoadEntryBytes, wo.churn, wo.transport, wo.path,
        wo.cache_slots > 0 ? absl::StrCat(" with a residency cache of ", wo.cache_slots, " slots") : "",
        all.elapsed_s);
    if (wo.client_churn > 0) absl::StrAppend(&header, "; each worker's client replaced every ", wo.client_churn, " steps");
    for (const auto& [name, count] : o_.tenants) absl::StrAppend(&header, "; tenant ", name, ": ", count, " worker(s)");
    absl::StrAppend(&header, "; contention control ",
                    o_.control ? absl::StrCat("on", cpu_groups_ != nullptr ? ": " + cpu_groups_->description() : "",
                                              o_.daemon.empty() ? "" : "; the daemon's creates and growths in turns")
                               : "off");
    if (o_.control && !o_.tenant_fetch_rates.empty()) {
      std::vector<std::string> rates;
      for (const auto& [name, count] : o_.tenants) {
        auto rate = o_.tenant_fetch_rates.find(name);
        rates.push_back(absl::StrCat(name, " ", rate == o_.tenant_fetch_rates.end() ? "unpaced"
                                                                                    : FormatBytes(rate->second) + "/s"));
      }
      absl::StrAppend(&header, "; each tenant's fetches paced (",
                      o_.tenant_fetch_shared ? "one pacer for its workers" : "split among its workers",
                      o_.worker.fetch_burst != absl::Milliseconds(1)
                          ? absl::StrCat(", bursts of ", absl::FormatDuration(o_.worker.fetch_burst))
                          : "",
                      "): ", absl::StrJoin(rates, ", "));
    }
    if (mps_ != nullptr) absl::StrAppend(&header, "; CUDA MPS", SmCapsDescription());
    std::string table =
        "| worker | steps | step p50 (us) | p99 | p99.9 | max | steps/s | entries/s | fetched | entries checked | "
        "failed calls ridden out |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    std::string csv = "worker,steps,p50_us,p99_us,p999_us,max_us,steps_per_s,entries_per_s,checked,failed_calls\n";
    for (size_t i = 0; i < results.size(); ++i) {
      const StepFigures figures(results[i].step_us);
      table += Row(names[i], results[i], figures);
      csv += CsvRow(names[i], results[i], figures);
    }
    for (int w = 0; w < o_.workers; ++w) {
      if (killed_[w]) absl::StrAppend(&table, "| ", w, " | killed by the worker-kill fault | | | | | | | | | |\n");
    }
    progress_.Done("load", absl::StrCat(all.step_us.size(), " steps, ", all.checked, " entries checked"));
    std::vector<std::pair<std::string, const LoadWorkerResult*>> time_groups;
    for (size_t i = results.size() - 1 - o_.tenants.size(); i < results.size(); ++i) {  // "all", then each tenant
      time_groups.emplace_back(names[i], &results[i]);
    }
    std::string text = absl::StrCat(header, "\n\n", table);
    if (wo.path == "gpu") {
      absl::StrAppend(&text,
                      "\nRequests that left a step for want of room (their reservation failing: the daemon away, the "
                      "pool full) and joined again: ", all.rejoined, "\n");
    }
    absl::StrAppend(&text, "\nWhere the workers' time went:\n\n", LoadTimeTable(time_groups));
    if (!faults.empty()) absl::StrAppend(&text, "\nFaults, each followed by a check of every live sequence:\n\n",
                                         FaultTable(faults));
    if (o_.soak) absl::StrAppend(&text, "\n", soak_.Markdown());
    std::printf("%s", text.c_str());
    // Plotted: the whole run, each tenant, the first eight workers.
    std::vector<StepGroup> groups;
    for (size_t i = 0, workers = 0; i < results.size(); ++i) {
      const bool worker = names[i] != "all" && !absl::StartsWith(names[i], "tenant ");
      if (!worker || workers++ < 8) {
        groups.push_back(StepGroup{worker ? absl::StrCat("worker ", names[i]) : names[i], results[i].step_us});
      }
    }
    for (const auto& [file, content] :
         {std::pair<std::string, std::string>{"results.md", text}, {"results.csv", csv},
          {"soak.csv", o_.soak ? soak_.Csv() : std::string()}, {"quantiles.csv", StepQuantilesCsv(groups)},
          {"plots.gp", LoadGnuplotScript(groups, o_.soak)}}) {
      if (content.empty()) continue;
      if (absl::Status s = WriteFile(o_.out + "/" + file, content); !s.ok()) return Fail(s.ToString());
    }
    if (absl::Status drawn = RunGnuplot(o_.out); !drawn.ok()) {
      std::fprintf(stderr, "sparsepool_load: %s\n", std::string(drawn.message()).c_str());
    }
    if (faults_failed) {
      std::fprintf(stderr, "sparsepool_load: a fault's check FAILED\n");
      return 1;
    }
    if (absl::Status leak = soak_.Verdict(); o_.soak && !leak.ok()) {
      std::fprintf(stderr, "sparsepool_load: soak FAILED: %s\n", std::string(leak.message()).c_str());
      return 1;
    }
    return 0;
  }

  // ": A's workers at N% of the SMs each (M% in all), ..." or "" without caps.
  std::string SmCapsDescription() const {
    std::string caps;
    for (const auto& [name, count] : o_.tenants) {
      const int each = SmPercentageOfTenant(count);
      if (each >= 100) continue;
      absl::StrAppend(&caps, caps.empty() ? ": " : ", ", name, "'s workers at ", each, "% of the SMs each (",
                      each * count, "% in all)");
    }
    return caps;
  }

  int Fail(const std::string& why) {
    std::fprintf(stderr, "sparsepool_load: %s\n", why.c_str());
    return 1;
  }

  const Options& o_;
  const std::vector<std::string> argv_;
  std::map<std::string, std::string> tokens_;  // by tenant
  std::unique_ptr<DaemonNetwork> network_;     // before the daemon: it runs inside
  std::unique_ptr<LoadDaemon> daemon_;
  std::unique_ptr<TenantCpuGroups> cpu_groups_;  // --control with --tenants
  std::unique_ptr<RunDirectory> run_directory_;  // the workers' files, the tokens
  std::unique_ptr<GpuMps> mps_;                  // --mps; quits after the workers have exited
  absl::Mutex pids_mu_;  // pushes and reaps here against the interrupt thread's kills
  std::vector<pid_t> pids_;
  std::vector<bool> reaped_;  // by worker, under pids_mu_
  std::vector<bool> killed_;
  ProgressLine progress_;
  SoakMonitor soak_;
};

int Run(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "many decode-worker processes against one daemon: step latency, faults with checks, tenants, "
                 "soak (issue 14; docs/reliability.md)\n\n"
                 "usage: sparsepool_load (--address=HOST:PORT | --daemon=\"sparsepoold --region=...\") "
                 "[--flag=value...]");
  Options o;
  LoadWorkerOptions& w = o.worker;
  w.address = absl::GetFlag(FLAGS_address);
  o.out = absl::GetFlag(FLAGS_out);
  w.dir = absl::GetFlag(FLAGS_worker_dir);
  o.daemon = absl::GetFlag(FLAGS_daemon);
  w.transport = absl::GetFlag(FLAGS_transport);
  w.path = absl::GetFlag(FLAGS_path);
  w.cache_slots = absl::GetFlag(FLAGS_cache_slots);
  w.reserve_tokens = absl::GetFlag(FLAGS_reserve_tokens);
  o.workers = absl::GetFlag(FLAGS_workers);
  w.seconds = absl::GetFlag(FLAGS_seconds);
  w.requests = absl::GetFlag(FLAGS_requests);
  w.rpc_timeout = absl::GetFlag(FLAGS_rpc_timeout);
  w.recover_seconds = absl::GetFlag(FLAGS_recover_seconds);
  o.fault_interval = absl::GetFlag(FLAGS_fault_interval);
  o.outage = absl::GetFlag(FLAGS_outage);
  w.tenant = absl::GetFlag(FLAGS_tenant);
  w.token_file = absl::GetFlag(FLAGS_token_file);
  w.fetch_bytes_per_second = absl::GetFlag(FLAGS_fetch_bytes_per_second);
  w.fetch_pacer_file = absl::GetFlag(FLAGS_fetch_pacer_file);
  w.fetch_burst = absl::GetFlag(FLAGS_tenant_fetch_burst);
  o.tenant_fetch_shared = absl::GetFlag(FLAGS_tenant_fetch_shared);
  o.soak = absl::GetFlag(FLAGS_soak);
  o.control = absl::GetFlag(FLAGS_control);
  o.tenant_cores = absl::GetFlag(FLAGS_tenant_cores);
  o.mps = absl::GetFlag(FLAGS_mps);
  o.worker_index = absl::GetFlag(FLAGS_worker_index);
  if (w.transport != "cxl" && w.transport != "ucx") return RefuseFlagValue("transport", w.transport, "cxl or ucx");
  if (w.path != "cpu" && w.path != "gpu") return RefuseFlagValue("path", w.path, "cpu or gpu");
  if (w.path == "gpu" && w.transport != "cxl") {
    return RefuseFlagValue("path", w.path, "the GPU path gathers from the mapped region: give --transport=cxl");
  }
  if (w.reserve_tokens >= (uint64_t{1} << 31)) {
    return RefuseFlagValue("reserve_tokens", absl::StrCat(w.reserve_tokens), "0 (the defaults) to 2147483647");
  }
  if (w.cache_slots > 0 && w.path != "gpu") {
    return RefuseFlagValue("cache_slots", absl::StrCat(w.cache_slots), "the residency cache is the GPU path's: give --path=gpu");
  }
  if (o.mps && w.path != "gpu") return RefuseFlagValue("mps", "true", "MPS serves the GPU path: give --path=gpu");
  if (o.workers <= 0 || o.workers > 1024) return RefuseFlagValue("workers", absl::StrCat(o.workers), "1 to 1024");
  if (!(w.seconds > 0)) return RefuseFlagValue("seconds", absl::StrCat(w.seconds), "more than 0");
  if (w.requests <= 0) return RefuseFlagValue("requests", absl::StrCat(w.requests), "at least 1");
  w.context = absl::GetFlag(FLAGS_context);
  w.layers = absl::GetFlag(FLAGS_layers);
  w.k = absl::GetFlag(FLAGS_k);
  if (w.context == 0) return RefuseFlagValue("context", "0", "at least 1 token");
  if (w.layers == 0) return RefuseFlagValue("layers", "0", "at least 1 layer");
  if (w.k == 0) return RefuseFlagValue("k", "0", "at least 1 entry");
  w.churn = absl::GetFlag(FLAGS_churn);
  if (w.churn <= 0) return RefuseFlagValue("churn", absl::StrCat(w.churn), "at least 1 step");
  w.client_churn = absl::GetFlag(FLAGS_client_churn);
  if (w.client_churn < 0) return RefuseFlagValue("client_churn", absl::StrCat(w.client_churn), "0 or more steps");
  if (w.client_churn > 0 && !absl::GetFlag(FLAGS_faults).empty()) {
    return RefuseFlagValue("client_churn", absl::StrCat(w.client_churn),
                           "0 with --faults: the fault checks follow each worker's one client");
  }
  for (auto [name, d] : {std::pair{"rpc_timeout", w.rpc_timeout}, std::pair{"fault_interval", o.fault_interval},
                         std::pair{"outage", o.outage}}) {
    if (d <= absl::ZeroDuration()) return RefuseFlagValue(name, absl::FormatDuration(d), "a positive duration");
  }
  if (!(w.recover_seconds > 0)) return RefuseFlagValue("recover_seconds", absl::StrCat(w.recover_seconds), "more than 0");
  if (const std::string tenants = absl::GetFlag(FLAGS_tenants); !tenants.empty() && !ParseTenants(tenants, o.tenants)) {
    return RefuseFlagValue("tenants", tenants, "NAME:WORKERS,... with at least one worker each");
  }
  if (const std::string rate = absl::GetFlag(FLAGS_tenant_fetch_rate); !rate.empty()) {
    if (o.tenants.empty()) return RefuseFlagValue("tenant_fetch_rate", rate, "it paces tenants: give --tenants");
    if (!o.control) {
      return RefuseFlagValue("tenant_fetch_rate", rate, "it is part of the contention control: drop --control=false");
    }
    if (absl::Status parsed = ParseTenantFetchRates(rate, o.tenants, o.tenant_fetch_rates); !parsed.ok()) {
      return RefuseFlagValue("tenant_fetch_rate", rate, parsed.message());
    }
  } else if (o.tenant_fetch_shared) {
    return RefuseFlagValue("tenant_fetch_shared", "true", "it shares a tenant's rate: give --tenant_fetch_rate");
  } else if (w.fetch_burst != absl::Milliseconds(1)) {
    return RefuseFlagValue("tenant_fetch_burst", absl::FormatDuration(w.fetch_burst),
                           "it shapes a tenant's rate: give --tenant_fetch_rate");
  }
  if (w.fetch_burst < absl::ZeroDuration() || w.fetch_burst > absl::Hours(1)) {
    return RefuseFlagValue("tenant_fetch_burst", absl::FormatDuration(w.fetch_burst), "0 to 1h");
  }
  const std::string faults = absl::GetFlag(FLAGS_faults);
  if (o.worker_index >= 0) {
    if (o.worker.dir.empty()) {
      return RefuseFlagValue("worker_index", absl::StrCat(o.worker_index), "internal: needs --worker_dir (set by the tool)");
    }
    o.worker.index = o.worker_index;
    return RunLoadWorker(o.worker);
  }
  if (!faults.empty()) {
    absl::StatusOr<std::vector<LoadFault>> parsed = ParseLoadFaults(faults);
    if (!parsed.ok()) {
      std::fprintf(stderr, "sparsepool_load: %s\n", std::string(parsed.status().message()).c_str());
      return 2;
    }
    o.faults = *std::move(parsed);
  }
  if (!o.tenants.empty()) {
    o.workers = 0;
    for (const auto& [name, count] : o.tenants) o.workers += count;
  }
  if (o.mps && o.workers > kMpsMaxClients) {
    return RefuseFlagValue("mps", "true",
                           absl::StrCat("at most ", kMpsMaxClients, " workers: MPS serves that many clients a GPU"));
  }
  return Parent(o, argc, argv).Run();
}

}  // namespace
}  // namespace sparsepool::bench

int main(int argc, char** argv) { return sparsepool::bench::Run(argc, argv); }
