#include "service/ucx_domain_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/scoped_fd.h"
#include "transport/cxl/region_mapping.h"
#include "transport/cxl/region_spec.h"
#include "transport/rdma/ucx_context.h"

namespace sparsepool {
namespace {

struct RegionArg {
  uint32_t index = 0;
  RegionKind kind = RegionKind::kShm;
  uint64_t bytes = 0;
  std::string path;
};

absl::StatusOr<RegionArg> ParseRegionArg(absl::string_view text) {
  const std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits(':', 3));
  RegionArg arg;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &arg.index) || !absl::SimpleAtoi(parts[2], &arg.bytes) ||
      parts[3].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("region argument \"", text, "\" should look like INDEX:KIND:BYTES:PATH"));
  }
  auto kind = ParseRegionKind(parts[1]);
  if (!kind.ok()) return kind.status();
  arg.kind = *kind;
  arg.path = std::string(parts[3]);
  return arg;
}

bool WriteAll(int fd, absl::string_view text) {
  while (!text.empty()) {
    const ssize_t n = write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Whether the parent has let go of us: our stdin reads EOF (it closed its end, or
// died), or we were reparented (it died before PR_SET_PDEATHSIG was in place).
bool ParentGone(const pollfd& control, pid_t parent) {
  if (getppid() != parent) return true;
  if (control.revents == 0) return false;
  char drain[64];
  const ssize_t n = read(control.fd, drain, sizeof(drain));
  return n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
}

// The target side of UCX's software RMA: progress the worker, sleeping on its event fd
// and our stdin when idle (waking every 10 ms anyway), until the parent lets go.
void ServeUntilParentGone(UcxContext& ucx, pid_t parent) {
  int event_fd = -1;
  const bool have_event_fd = ucp_worker_get_efd(ucx.worker(), &event_fd) == UCS_OK;
  unsigned busy_rounds = 0;
  while (true) {
    // Under constant load, still look at the parent now and then.
    const bool progressed = ucx.Progress();
    if (progressed && ++busy_rounds % 256 != 0) continue;
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {event_fd, POLLIN, 0}};
    nfds_t count = 1;
    int timeout_ms = 0;
    // Arming fails (busy) when events came in since the last progress: go round again.
    if (!progressed && have_event_fd && ucp_worker_arm(ucx.worker()) == UCS_OK) {
      count = 2;
      timeout_ms = 10;
    }
    if (poll(fds, count, timeout_ms) < 0 && errno != EINTR) return;
    if (ParentGone(fds[0], parent)) return;
  }
}

// Maps the regions named on the command line, registers them, writes the handshake to
// `handshake` (closed after it) and serves until the parent lets go.
absl::Status Serve(int argc, char** argv, ScopedFd& handshake) {
  pid_t parent = 0;
  if (argc < 4 || !absl::SimpleAtoi(argv[2], &parent)) {
    return absl::InvalidArgumentError(
        absl::StrCat("usage: ", argv[0], " ", kUcxDomainServerFlag, " PARENT_PID INDEX:KIND:BYTES:PATH..."));
  }
  if (getppid() != parent) {
    return absl::FailedPreconditionError(absl::StrCat("the daemon (pid ", parent, ") is already gone"));
  }
  // Declared in this order so that they go in the reverse one: registrations, then the
  // worker, then the mappings.
  std::vector<RegionArg> args;
  std::vector<MappedRegion> regions;
  for (int i = 3; i < argc; ++i) {
    auto arg = ParseRegionArg(argv[i]);
    if (!arg.ok()) return arg.status();
    auto region = MappedRegion::Attach(arg->kind, arg->path, arg->bytes);
    if (!region.ok()) return region.status();
    args.push_back(*std::move(arg));
    regions.push_back(*std::move(region));
  }
  auto ucx = UcxContext::Create();
  if (!ucx.ok()) return ucx.status();
  std::vector<std::unique_ptr<UcxMemory>> memory;
  std::string hello = absl::StrCat("worker ", absl::BytesToHexString((*ucx)->worker_address()), "\n");
  for (size_t r = 0; r < regions.size(); ++r) {
    auto mapped = UcxMemory::Map((*ucx)->context(), regions[r].base(), regions[r].size());
    if (!mapped.ok()) {
      return absl::Status(mapped.status().code(),
                          absl::StrCat("region ", regions[r].path(), ": ", mapped.status().message()));
    }
    absl::StrAppend(&hello, "region ", args[r].index, " ", reinterpret_cast<uintptr_t>(regions[r].base()), " ",
                    absl::BytesToHexString((*mapped)->packed_rkey()), "\n");
    memory.push_back(*std::move(mapped));
  }
  absl::StrAppend(&hello, "ready\n");
  if (!WriteAll(handshake.get(), hello)) {
    return absl::UnavailableError("cannot write the handshake: the daemon closed the pipe");
  }
  handshake = ScopedFd();
  ServeUntilParentGone(**ucx, parent);
  return absl::OkStatus();
}

}  // namespace

int RunUcxDomainServer(int argc, char** argv) {
  // Die with the daemon even when it cannot close our stdin (SIGKILL). It fires when the
  // thread that started us exits; Serve checks getppid() for a parent gone before this.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Our life follows the daemon's, through the stdin pipe, not signals sent to its whole
  // process group (a terminal's Ctrl-C) or cgroup (systemd's stop): the daemon stops
  // us once it has stopped serving.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  // Keep the handshake away from fd 1, where UCX prints its warnings: those go to
  // stderr (the daemon's log) instead.
  ScopedFd handshake(fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
  if (!handshake.valid() || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) return 1;
  const absl::Status status = Serve(argc, argv, handshake);
  if (status.ok()) return 0;
  if (handshake.valid()) {
    WriteAll(handshake.get(), absl::StrCat("error ", static_cast<int>(status.code()), " ",
                                           absl::StrReplaceAll(status.message(), {{"\n", " "}}), "\n"));
  }
  return 1;
}

}  // namespace sparsepool
