#include "service/ucx_publisher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "service/ucx_domain_server.h"

extern char** environ;

namespace sparsepool {
namespace {

constexpr absl::Duration kHandshakeTimeout = absl::Seconds(30);
constexpr absl::Duration kExitGrace = absl::Seconds(2);
constexpr size_t kMaxHandshakeBytes = 1 << 20;

absl::Status ErrnoError(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// A pipe whose ends are close-on-exec (no other child inherits them) and above the
// standard streams (so that dup2-ing one end onto fd 0 cannot clobber the other).
absl::Status MakePipe(ScopedFd& read_end, ScopedFd& write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("creating a pipe to a UCX worker process");
  ScopedFd ends[2] = {ScopedFd(fds[0]), ScopedFd(fds[1])};
  for (ScopedFd& end : ends) {
    if (end.get() > STDERR_FILENO) continue;
    end = ScopedFd(fcntl(end.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
    if (!end.valid()) return ErrnoError("moving a pipe to a UCX worker process");
  }
  read_end = std::move(ends[0]);
  write_end = std::move(ends[1]);
  return absl::OkStatus();
}

std::string Describe(size_t index, const std::vector<UcxDomainRegion>& regions) {
  std::string text = absl::StrCat("the UCX worker process of domain ", index, " (");
  for (size_t r = 0; r < regions.size(); ++r) {
    absl::StrAppend(&text, r == 0 ? "" : ", ", "region ", regions[r].index, " ", regions[r].path);
  }
  return absl::StrCat(text, ")");
}

std::string ExitText(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("was killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  }
  return absl::StrCat("ended with wait status ", status);
}

absl::StatusOr<pid_t> Spawn(const std::string& executable, const std::vector<UcxDomainRegion>& regions,
                            int child_stdin, int child_stdout) {
  std::vector<std::string> args = {executable, kUcxDomainServerFlag, absl::StrCat(getpid())};
  for (const UcxDomainRegion& region : regions) {
    args.push_back(absl::StrCat(region.index, ":", RegionKindName(region.kind), ":", region.bytes, ":", region.path));
  }
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_stdin, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, child_stdout, STDOUT_FILENO);
  // Nothing else of the daemon's (a socket, a file opened without O_CLOEXEC) goes along;
  // stderr stays, so the child's complaints reach the daemon's log.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // The daemon blocks its stop signals in every thread (it sigwaits them); the child
  // starts with none blocked and chooses for itself.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int err = posix_spawn(&pid, executable.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return absl::InternalError(absl::StrCat("cannot start ", executable, ": ", std::strerror(err)));
  return pid;
}

// Strict hex (the handshake's encoding of binary addresses and keys).
bool FromHex(absl::string_view hex, std::string* bytes) {
  if (hex.empty() || hex.size() % 2 != 0) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  *bytes = absl::HexStringToBytes(hex);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<UcxPublisher>> UcxPublisher::Create(
    const std::vector<std::vector<UcxDomainRegion>>& domains, const std::string& executable) {
  std::unique_ptr<UcxPublisher> publisher(new UcxPublisher());
  // Every child starts before any handshake is read, so they map and register in
  // parallel. A failure returns here and the destructor stops the children started.
  std::vector<ScopedFd> from_children;
  for (size_t d = 0; d < domains.size(); ++d) {
    Domain& domain = publisher->domains_.emplace_back();
    domain.name = Describe(d, domains[d]);
    if (domains[d].empty()) return absl::InvalidArgumentError(absl::StrCat(domain.name, " has no regions"));
    ScopedFd child_stdin, child_stdout, from_child;
    if (absl::Status s = MakePipe(child_stdin, domain.to_child); !s.ok()) return s;
    if (absl::Status s = MakePipe(from_child, child_stdout); !s.ok()) return s;
    auto pid = Spawn(executable, domains[d], child_stdin.get(), child_stdout.get());
    if (!pid.ok()) return absl::Status(pid.status().code(), absl::StrCat(domain.name, ": ", pid.status().message()));
    domain.pid = *pid;
    // The child's ends close here, so that each pipe reads EOF once the other side is gone.
    from_children.push_back(std::move(from_child));
  }
  const absl::Time deadline = absl::Now() + kHandshakeTimeout;
  for (size_t d = 0; d < domains.size(); ++d) {
    absl::Status s = publisher->ReadHandshake(publisher->domains_[d], domains[d], from_children[d].get(), deadline);
    if (!s.ok()) return s;
  }
  return publisher;
}

absl::Status UcxPublisher::ReadHandshake(Domain& domain, const std::vector<UcxDomainRegion>& regions,
                                         int from_child, absl::Time deadline) {
  auto bad_line = [&](absl::string_view line) {
    return absl::InternalError(absl::StrCat(domain.name, " sent a malformed handshake line: \"", line, "\""));
  };
  auto handle = [&](absl::string_view line) -> absl::Status {
    if (absl::ConsumePrefix(&line, "error ")) {
      const std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(' ', 1));
      int code = 0;
      if (!absl::SimpleAtoi(parts.first, &code) || code <= 0 ||
          code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
        code = static_cast<int>(absl::StatusCode::kInternal);
      }
      return absl::Status(static_cast<absl::StatusCode>(code), absl::StrCat(domain.name, " failed: ", parts.second));
    }
    if (absl::ConsumePrefix(&line, "worker ")) {
      return FromHex(line, &domain.worker_address) ? absl::OkStatus() : bad_line(line);
    }
    if (absl::ConsumePrefix(&line, "region ")) {
      const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
      uint32_t index = 0;
      Registration registration;
      if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &index) || !absl::SimpleAtoi(parts[1], &registration.base) ||
          !FromHex(parts[2], &registration.rkey)) {
        return bad_line(line);
      }
      const bool ours = std::any_of(regions.begin(), regions.end(), [&](const auto& r) { return r.index == index; });
      if (!ours || !domain.regions.emplace(index, std::move(registration)).second) {
        return absl::InternalError(absl::StrCat(domain.name, " registered region ", index, ", not one asked of it"));
      }
      return absl::OkStatus();
    }
    return bad_line(line);
  };

  std::string pending;
  while (true) {
    for (size_t end; (end = pending.find('\n')) != std::string::npos;) {
      const std::string line = pending.substr(0, end);
      pending.erase(0, end + 1);
      if (line != "ready") {
        if (absl::Status s = handle(line); !s.ok()) return s;
        continue;
      }
      if (domain.worker_address.empty() || domain.regions.size() != regions.size()) {
        return absl::InternalError(absl::StrCat(domain.name, " was ready before it registered every region"));
      }
      return absl::OkStatus();
    }
    if (pending.size() > kMaxHandshakeBytes) return bad_line(pending.substr(0, 80));
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(domain.name, " did not register its regions within ",
                                                      absl::FormatDuration(kHandshakeTimeout)));
    }
    pollfd wait{from_child, POLLIN, 0};
    const int ready = poll(&wait, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready <= 0) continue;  // EINTR, or the deadline (checked above)
    char buffer[4096];
    const ssize_t n = read(from_child, buffer, sizeof(buffer));
    if (n > 0) {
      pending.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // EOF: the child went without a word (killed, or it crashed).
    const std::optional<int> status = ReapBy(domain, absl::Now() + kExitGrace);
    return absl::InternalError(absl::StrCat(domain.name, " ", status ? ExitText(*status) : "closed its pipe",
                                            " before it was ready; its stderr (the daemon's log) may say why"));
  }
}

std::optional<int> UcxPublisher::ReapBy(Domain& domain, absl::Time deadline) {
  while (!domain.reaped) {
    int status = 0;
    const pid_t done = waitpid(domain.pid, &status, WNOHANG);
    if (done == domain.pid) {
      domain.reaped = true;
      return status;
    }
    if (done < 0 && errno != EINTR) {
      domain.reaped = true;  // ECHILD: someone else reaped it
      return std::nullopt;
    }
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return std::nullopt;
}

UcxPublisher::~UcxPublisher() {
  // Closing their stdin tells every child to unregister, unmap and exit.
  for (Domain& domain : domains_) domain.to_child = ScopedFd();
  const absl::Time deadline = absl::Now() + kExitGrace;
  for (Domain& domain : domains_) {
    if (domain.pid <= 0 || domain.reaped) continue;
    if (ReapBy(domain, deadline) || domain.reaped) continue;
    kill(domain.pid, SIGKILL);
    ReapBy(domain, absl::InfiniteFuture());
  }
}

void UcxPublisher::Annotate(RegionRef& ref, size_t domain) const {
  if (domain >= domains_.size()) return;
  const auto it = domains_[domain].regions.find(ref.index);
  if (it == domains_[domain].regions.end()) return;
  ref.ucx_worker_address = domains_[domain].worker_address;
  ref.ucx_rkey = it->second.rkey;
  ref.remote_base = it->second.base;
}

std::vector<pid_t> UcxPublisher::child_pids() const {
  std::vector<pid_t> pids;
  for (const Domain& domain : domains_) pids.push_back(domain.pid);
  return pids;
}

absl::Status UcxPublisher::Check() const {
  for (const Domain& domain : domains_) {
    if (domain.reaped) return absl::UnavailableError(absl::StrCat(domain.name, " has ended"));
    // WNOWAIT: look without reaping, so that this stays const and repeatable.
    siginfo_t info = {};
    if (waitid(P_PID, static_cast<id_t>(domain.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == domain.pid) {
      return absl::UnavailableError(absl::StrCat(
          domain.name, " ",
          info.si_code == CLD_EXITED ? absl::StrCat("exited with status ", info.si_status)
                                     : absl::StrCat("was killed by signal ", info.si_status),
          "; UCX clients cannot reach its regions"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsepool
