#include "bench/load_faults.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/load_worker.h"
#include "client/sparsepool_client.h"
#include "common/units.h"

namespace sparsepool::bench {
namespace {

void Sleep(absl::Duration d) { std::this_thread::sleep_for(absl::ToChronoNanoseconds(d)); }

// Waits (up to a second) until the kernel has stopped `pid` (state T in /proc).
void WaitStopped(pid_t pid) {
  for (int i = 0; i < 100; ++i) {
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat;
    std::getline(in, stat);
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size()) return;  // gone
    const char state = stat[paren + 2];
    if (state == 'T' || state == 't' || state == 'Z' || state == 'X') return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::fprintf(stderr, "sparsepool_load: worker %d did not stop within a second; checking anyway\n", pid);
}

// Another tenant of the pool filling it: sequences as large as the pool grants, then
// smaller ones, until it refuses. While the workers churn, each of their releases
// becomes room for the filler once its reuse grace has passed, so a create may wait up
// to its deadline and the filling could go on as long as they release: it stops at
// `give_up_after`. Then it holds the pool full: what the workers release it takes again
// as it becomes reusable, so that their creates and growth meet a full pool rather than
// the room their own releases left.
class PoolFiller {
 public:
  absl::Status Fill(const std::string& address, const std::string& token, absl::Duration give_up_after) {
    ClientOptions options;
    options.address = address;
    options.token = token;
    options.client_id = absl::StrCat("load-filler-", getpid());
    options.rpc_timeout = absl::Seconds(1);
    auto client = Client::Connect(options);
    if (!client.ok()) return client.status();
    client_ = *std::move(client);
    const absl::Time stop = absl::Now() + give_up_after;
    for (uint64_t tokens : kSizes) {
      refusal_.clear();  // the last size's refusal is the one that says the pool is full
      while (absl::Now() < stop) {
        absl::StatusOr<bool> taken = Take(tokens);
        if (!taken.ok()) return taken.status();
        if (!*taken) break;
      }
    }
    filled_ = ids_.size();
    filled_bytes_ = bytes_;
    return absl::OkStatus();
  }
  // Until `hold` passes, takes whatever room appears, the largest size first. A create
  // may wait up to the filler's deadline (a second) for room, so the hold may run that
  // much longer: Retaken says how long it was.
  absl::Status Hold(absl::Duration hold) {
    const absl::Time begin = absl::Now(), stop = begin + hold;
    size_t size = 0;
    while (absl::Now() < stop) {
      absl::StatusOr<bool> taken = Take(kSizes[size]);
      if (!taken.ok()) return taken.status();
      if (*taken) continue;
      if (++size == std::size(kSizes)) {
        size = 0;
        Sleep(absl::Milliseconds(10));
      }
    }
    held_ = absl::Now() - begin;
    return absl::OkStatus();
  }
  absl::Status ReleaseAll() {
    for (SequenceId id : ids_) {
      if (absl::Status s = client_->ReleaseSequence(id); !s.ok()) return s;
    }
    ids_.clear();
    client_.reset();
    return absl::OkStatus();
  }
  // What Fill did (call before Hold).
  std::string What() const {
    return absl::StrCat("filled with ", ids_.size(), " sequences (", FormatBytes(bytes_), ") ",
                        refusal_.empty() ? "until its time was up (the pool kept granting)"
                                         : absl::StrCat("until refused: \"", refusal_.substr(0, 120), "\""));
  }
  // What Hold took again, and for how long it held.
  std::string Retaken() const {
    return absl::StrCat(absl::FormatDuration(absl::Trunc(held_, absl::Milliseconds(10))), ", ", ids_.size() - filled_,
                        " sequences (", FormatBytes(bytes_ - filled_bytes_), ") retaken");
  }
  // A fault that failed half way lets go of what it holds all the same.
  ~PoolFiller() {
    if (client_ != nullptr) (void)ReleaseAll();
  }

 private:
  // Tokens of the filler's sequences (one layer of 4096-byte entries): 64 MiB, 1 MiB,
  // one page.
  static constexpr uint64_t kSizes[] = {16384, 256, 1};

  // One sequence of `tokens`: true when granted, false when refused (the pool full, or
  // its room not free before the deadline).
  absl::StatusOr<bool> Take(uint64_t tokens) {
    SequenceSpec spec;
    spec.layers = 1;
    spec.entry_bytes = 4096;
    spec.tokens = tokens;
    absl::StatusOr<SequenceId> id = client_->CreateSequence(spec);
    if (absl::IsResourceExhausted(id.status()) || absl::IsDeadlineExceeded(id.status())) {
      refusal_ = std::string(id.status().message());
      return false;
    }
    if (!id.ok()) return id.status();
    ids_.push_back(*id);
    bytes_ += tokens * spec.entry_bytes;
    return true;
  }

  std::unique_ptr<Client> client_;
  std::vector<SequenceId> ids_;
  uint64_t bytes_ = 0;
  size_t filled_ = 0;  // sequences and bytes Fill took
  uint64_t filled_bytes_ = 0;
  absl::Duration held_;
  std::string refusal_;
};

class FaultRunner {
 public:
  FaultRunner(const FaultRunOptions& o, LoadDaemon* daemon, DaemonNetwork* network, const std::vector<pid_t>& pids,
              std::vector<bool>& killed)
      : o_(o), daemon_(daemon), network_(network), pids_(pids), killed_(killed), start_(absl::Now()) {}

  absl::StatusOr<std::vector<FaultRecord>> Run(const std::vector<LoadFault>& faults) {
    std::vector<FaultRecord> records;
    Sleep(o_.interval);
    for (LoadFault fault : faults) {
      if (o_.interrupted()) break;
      FaultRecord record;
      record.fault = fault;
      record.at_s = absl::ToDoubleSeconds(absl::Now() - start_);
      const uint64_t errors_before = TotalProgress().errors;
      absl::StatusOr<std::string> what = Inject(fault);
      if (!what.ok()) return what.status();
      record.what = *what;
      Sleep(o_.interval);
      absl::StatusOr<LoadCheckReport> check = CheckPaused();
      if (!check.ok()) return check.status();
      record.check = *std::move(check);
      const LoadWorkerProgress now = TotalProgress();
      record.errors = now.errors - errors_before;
      record.longest_error_ms = now.longest_error_ms;
      const double limit_ms = absl::ToDoubleMilliseconds(o_.call_deadline + absl::Seconds(1));
      if (now.longest_error_ms > limit_ms) {
        record.check.problems.push_back(absl::StrFormat("a failing call took %.0f ms to fail, past its deadline (%.0f ms)",
                                                        now.longest_error_ms, limit_ms));
      }
      records.push_back(std::move(record));
    }
    return records;
  }

 private:
  absl::StatusOr<std::string> Inject(LoadFault fault) {
    switch (fault) {
      case LoadFault::kDaemonKill: {
        if (daemon_ == nullptr) {
          return absl::FailedPreconditionError("daemon-kill needs a daemon the load tool owns (--daemon)");
        }
        daemon_->Kill();
        Sleep(o_.outage);
        if (absl::Status s = daemon_->Start(); !s.ok()) return s;
        return absl::StrCat("SIGKILL, down ", absl::FormatDuration(o_.outage), ", restarted at ", daemon_->address());
      }
      case LoadFault::kWorkerKill: {
        int victim = -1, alive = 0;
        for (size_t w = 0; w < pids_.size(); ++w) {
          if (!killed_[w]) {
            ++alive;
            victim = static_cast<int>(w);
          }
        }
        if (alive < 2) return absl::FailedPreconditionError("worker-kill leaves no worker running: start more workers");
        kill(pids_[victim], SIGKILL);
        killed_[victim] = true;
        return absl::StrCat("SIGKILL worker ", victim);
      }
      case LoadFault::kFill: {
        PoolFiller filler;
        if (absl::Status s = filler.Fill(o_.address, o_.filler_token, o_.interval); !s.ok()) return s;
        const std::string what = filler.What();
        if (absl::Status s = filler.Hold(o_.outage); !s.ok()) return s;
        const std::string retaken = filler.Retaken();
        if (absl::Status s = filler.ReleaseAll(); !s.ok()) return s;
        return absl::StrCat(what, ", held (", retaken, "), released");
      }
      case LoadFault::kNetCut: {
        if (network_ == nullptr) {
          return absl::FailedPreconditionError(
              "net-cut needs the daemon on a host of its own: the load tool makes one for --daemon");
        }
        if (absl::Status s = network_->SetLink(false); !s.ok()) return s;
        Sleep(o_.outage);
        if (absl::Status s = network_->SetLink(true); !s.ok()) return s;
        return absl::StrCat("link to ", network_->address(), " down ", absl::FormatDuration(o_.outage), ", up");
      }
    }
    return absl::InvalidArgumentError("unknown fault");
  }

  // Stops every running worker, so that ledgers and pool stand still, checks, resumes.
  absl::StatusOr<LoadCheckReport> CheckPaused() {
    // A worker counts each SIGCONT and leaves a call that spanned a stop out of the
    // deadline check (bench/load_worker.cc).
    for (size_t w = 0; w < pids_.size(); ++w) {
      if (!killed_[w]) kill(pids_[w], SIGSTOP);
    }
    for (size_t w = 0; w < pids_.size(); ++w) {
      if (!killed_[w]) WaitStopped(pids_[w]);
    }
    absl::StatusOr<LoadCheckReport> report = Check();
    for (size_t w = 0; w < pids_.size(); ++w) {
      if (!killed_[w]) kill(pids_[w], SIGCONT);
    }
    return report;
  }

  absl::StatusOr<LoadCheckReport> Check() {
    std::vector<LoadWorkerLedger> ledgers;
    for (size_t w = 0; w < pids_.size(); ++w) {
      absl::StatusOr<LoadLedger> ledger = LoadLedger::Load(LoadWorkerFile(o_.dir, w, "ledger"));
      if (!ledger.ok()) return ledger.status();
      ledgers.push_back(LoadWorkerLedger{static_cast<int>(w), *std::move(ledger), !killed_[w]});
    }
    ClientOptions options;
    options.address = o_.address;
    options.client_id = absl::StrCat("load-checker-", getpid());
    options.token = o_.operator_token;
    // An operator holds no lease (it may not call KeepAlive): it only reads.
    if (!o_.operator_token.empty()) options.keepalive_interval = absl::ZeroDuration();
    auto reader = Client::Connect(options);
    if (!reader.ok()) return reader.status();
    return CheckPoolAgainstLedgers(o_.address, o_.call_deadline, **reader, ledgers, o_.operator_token);
  }

  LoadWorkerProgress TotalProgress() const { return TotalLoadProgress(o_.dir, static_cast<int>(pids_.size())); }

  const FaultRunOptions& o_;
  LoadDaemon* daemon_;
  DaemonNetwork* network_;
  const std::vector<pid_t>& pids_;
  std::vector<bool>& killed_;
  const absl::Time start_;
};

}  // namespace

absl::StatusOr<std::vector<LoadFault>> ParseLoadFaults(absl::string_view list) {
  std::vector<LoadFault> faults;
  for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    if (name == "daemon-kill") faults.push_back(LoadFault::kDaemonKill);
    else if (name == "worker-kill") faults.push_back(LoadFault::kWorkerKill);
    else if (name == "fill") faults.push_back(LoadFault::kFill);
    else if (name == "net-cut") faults.push_back(LoadFault::kNetCut);
    else return absl::InvalidArgumentError(absl::StrCat("unknown fault \"", name, "\" (daemon-kill, worker-kill, fill, net-cut)"));
  }
  return faults;
}

const char* LoadFaultName(LoadFault fault) {
  switch (fault) {
    case LoadFault::kDaemonKill: return "daemon-kill";
    case LoadFault::kWorkerKill: return "worker-kill";
    case LoadFault::kFill: return "fill";
    case LoadFault::kNetCut: return "net-cut";
  }
  return "?";
}

absl::StatusOr<std::vector<FaultRecord>> RunLoadFaults(const FaultRunOptions& options,
                                                       const std::vector<LoadFault>& faults, LoadDaemon* daemon,
                                                       DaemonNetwork* network, const std::vector<pid_t>& pids,
                                                       std::vector<bool>& killed) {
  return FaultRunner(options, daemon, network, pids, killed).Run(faults);
}

std::string FaultTable(const std::vector<FaultRecord>& records) {
  std::string table =
      "| fault | at (s) | what | failed calls ridden out | longest failing call (ms) | check |\n"
      "|---|---|---|---|---|---|\n";
  for (const FaultRecord& r : records) {
    absl::StrAppendFormat(&table, "| %s | %.1f | %s | %d | %.0f | %s |\n", LoadFaultName(r.fault), r.at_s, r.what,
                          r.errors, r.longest_error_ms, (r.ok() ? "ok: " : "FAILED: ") + r.check.Summary());
  }
  return table;
}

}  // namespace sparsepool::bench
