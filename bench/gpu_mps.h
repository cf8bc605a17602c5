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

// The clients one MPS server takes on a GPU (Volta and later; CUDA's MPS guide):
// past it a worker's CUDA start fails.
constexpr int kMpsMaxClients = 48;

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

  // NAME=VALUE entries a client process needs: the pipe and log folders and the cap on
  // the share of the SMs its kernels may use, 1 to 100 (100: no cap). MPS turns it into
  // whole SMs, so small caps are coarse; it bounds SMs, not the PCIe link or host
  // memory the gathers read.
  std::vector<std::string> ClientEnvironment(int active_thread_percentage = 100) const;

  // Where its logs are (control.log, server.log): for messages and the report.
  std::string log_dir() const;

 private:
  explicit GpuMps(std::string dir) : dir_(std::move(dir)) {}
  std::string pipe_dir() const;

  const std::string dir_;
  bool running_ = false;  // the control daemon was started: quit it when destroyed
};

// What GpuMps::ClientEnvironment gives, for a control daemon whose folders are under
// `dir`.
std::vector<std::string> MpsClientEnvironment(const std::string& dir, int active_thread_percentage);

// The cap, in percent of the SMs, for each worker of a tenant running `tenant_workers`
// workers among `tenants` tenants: the tenant's equal share (100 / tenants) divided
// among its workers, at least 1. MPS caps each client, not a group of them, so a
// tenant's bound is the sum of its workers' caps: past 100 / tenants workers of a
// tenant, the floor of 1% makes that sum more than its share.
int TenantWorkerSmPercentage(int tenants, int tenant_workers);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_GPU_MPS_H_
