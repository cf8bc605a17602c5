// CUDA's Multi-Process Service for the load tool's GPU-path workers.
//
// Why: each worker is a process with a CUDA context of its own, as decode workers
// sharing a GPU are. Without MPS the GPU time-slices between contexts, so one worker's
// gather runs while every other waits for its turn, however few SMs it needs: a
// worker's step time grows with the number of workers beside it, and nothing bounds a
// tenant's share of the GPU except how many processes it runs. Under MPS the workers'
// kernels run side by side, and CUDA_MPS_ACTIVE_THREAD_PERCENTAGE caps the share of the
// SMs each client may use: the bound on a tenant's share of the gather's blocks.
//
// The control daemon started here has pipe and log folders of its own (under the run's
// folder), so that it serves only the processes given ClientEnvironment: a host's own
// MPS (in /tmp/nvidia-mps by default) and the GPU's compute mode are left alone.
#ifndef SPARSEPOOL_BENCH_GPU_MPS_H_
#define SPARSEPOOL_BENCH_GPU_MPS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sparsepool::bench {

class GpuMps {
 public:
  // Makes `dir`/mps-pipe and `dir`/mps-log and starts `nvidia-cuda-mps-control -d`
  // (found on PATH) there. FailedPrecondition saying why when it cannot: the program is
  // missing or exits with an error, or its control pipe does not appear.
  static absl::StatusOr<std::unique_ptr<GpuMps>> Start(const std::string& dir);
  // Asks the control daemon to quit; it stops its server once the clients are gone, so
  // destroy this after the workers have exited.
  ~GpuMps();
  GpuMps(const GpuMps&) = delete;
  GpuMps& operator=(const GpuMps&) = delete;

  // NAME=VALUE entries a client process needs: the pipe and log folders and, when
  // `active_thread_percentage` is 1 to 99, the cap on the share of the SMs its kernels
  // may use (100: no cap).
  std::vector<std::string> ClientEnvironment(int active_thread_percentage = 100) const;

  // Where its logs are (control.log, server.log): for messages and the report.
  std::string log_dir() const { return dir_ + "/mps-log"; }

 private:
  explicit GpuMps(std::string dir) : dir_(std::move(dir)) {}
  std::string pipe_dir() const { return dir_ + "/mps-pipe"; }

  const std::string dir_;
  bool running_ = false;  // the control daemon was started: quit it when destroyed
};

// The cap, in percent of the SMs, for each worker of a tenant running `tenant_workers`
// workers among `tenants` tenants: the tenant's equal share (100 / tenants) divided
// among its workers, at least 1. MPS caps each client, not a group of them, so a
// tenant's bound is the sum of its workers' caps.
int TenantWorkerSmPercentage(int tenants, int tenant_workers);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_GPU_MPS_H_
