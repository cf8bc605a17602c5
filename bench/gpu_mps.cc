#include "bench/gpu_mps.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/load_processes.h"
#include "common/file_text.h"

namespace sparsepool::bench {
namespace {
constexpr char kControl[] = "nvidia-cuda-mps-control";
// Under the run's folder: the control daemon's pipes and its and the server's logs.
constexpr char kPipeDir[] = "/mps-pipe";
constexpr char kLogDir[] = "/mps-log";

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(absl::StrCat("cannot make ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<std::unique_ptr<GpuMps>> GpuMps::Start(const std::string& dir) {
  std::unique_ptr<GpuMps> mps(new GpuMps(dir));
  for (const std::string& d : {mps->pipe_dir(), mps->log_dir()}) {
    if (absl::Status s = MakeDir(d); !s.ok()) return s;
  }
  SpawnOptions options;
  options.log_path = dir + "/mps-start.log";
  options.env = mps->ClientEnvironment();
  options.default_signals = true;  // the daemon outlives this call: it must stay killable
  // -d: it forks the control daemon and exits, 0 once it is set up.
  if (absl::Status s = RunToCompletion({kControl, "-d"}, options, absl::Seconds(30)); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start CUDA MPS (", s.message(), "); run without --mps, or put ", kControl, " on PATH"));
  }
  mps->running_ = true;
  // The control pipe appears once the daemon listens on it.
  const std::string control_pipe = mps->pipe_dir() + "/control";
  for (int i = 0; i < 100; ++i) {
    struct stat st;
    if (stat(control_pipe.c_str(), &st) == 0) return mps;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("CUDA MPS started but no ", control_pipe, " appeared within 5 s; see ", mps->log_dir()));
}

GpuMps::~GpuMps() {
  if (!running_) return;
  const std::string quit = dir_ + "/mps-quit";
  SpawnOptions options;
  options.log_path = dir_ + "/mps-start.log";
  options.stdin_path = quit;
  options.env = ClientEnvironment();
  options.default_signals = true;
  // `quit` waits for the servers' clients to exit: bounded, so that a client that
  // outlived the workers cannot hang the tool.
  absl::Status s = WriteFileTextAtomically(quit, "quit\n");
  if (s.ok()) s = RunToCompletion({kControl}, options, absl::Seconds(30));
  if (!s.ok()) std::fprintf(stderr, "sparsepool_load: could not stop CUDA MPS: %s\n", s.ToString().c_str());
}

std::string GpuMps::log_dir() const { return dir_ + kLogDir; }
std::string GpuMps::pipe_dir() const { return dir_ + kPipeDir; }

std::vector<std::string> GpuMps::ClientEnvironment(int active_thread_percentage) const {
  return MpsClientEnvironment(dir_, active_thread_percentage);
}

std::vector<std::string> MpsClientEnvironment(const std::string& dir, int active_thread_percentage) {
  // Always set: one inherited from our environment must not cap an uncapped client.
  return {absl::StrCat("CUDA_MPS_PIPE_DIRECTORY=", dir, kPipeDir), absl::StrCat("CUDA_MPS_LOG_DIRECTORY=", dir, kLogDir),
          absl::StrCat("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=", std::clamp(active_thread_percentage, 1, 100))};
}

int TenantWorkerSmPercentage(int tenants, int tenant_workers) {
  if (tenants <= 0 || tenant_workers <= 0) return 100;
  return std::max(1, 100 / tenants / tenant_workers);
}

}  // namespace sparsepool::bench
