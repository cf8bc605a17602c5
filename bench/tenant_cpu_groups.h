// Each tenant's decode workers on this host in a CPU control group of its own, all with
// the same weight and each capped at its share of the cores (cores / tenants): the
// kernel then shares the cores between tenants, not between processes, so a tenant
// running 31 workers gets no more CPU than one running one whenever both want it.
//
// Why a cap and not only weights (measured on the 16-core device host, docs/
// reliability.md): weights alone left a quiet tenant's p99 at 2.1x its p99 alone
// beside a 31-worker flood, though it had its core: what the flood took from it was
// memory bandwidth, which weights do not divide (the flood's weight covers 15 cores'
// worth of copies). Capping the flood's CPU time caps the bandwidth its copies can
// draw. The price: a tenant alone on the host cannot use more than its share
// (not work-conserving).
//
// Why here and not in the daemon: on the CPU path (CXL load/store, or host memory) the
// daemon does no work on a step; each worker copies its own entries with its own copy
// threads, so what tenants contend for is this host's cores, and the fair share of
// them is the scheduler's to enforce. In production the same is one systemd slice (or
// container) per tenant with equal CPUWeight (deploy/systemd/); sparsepool-load makes
// the groups itself so that the comparison with and without them is one command.
//
// cgroup v2 (cpu.weight, cpu.max) where its cpu controller is available, else v1's
// cpu controller (cpu.shares, cpu.cfs_quota_us). Needs root.
#ifndef SPARSEPOOL_BENCH_TENANT_CPU_GROUPS_H_
#define SPARSEPOOL_BENCH_TENANT_CPU_GROUPS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sparsepool::bench {

class TenantCpuGroups {
 public:
  // Makes `sparsepool-load-PID/TENANT` under the cpu controller's mount for each of
  // `tenants`, with equal weights and caps. FailedPrecondition saying why when it cannot (no cpu
  // controller mounted, not root, v2 without the cpu controller delegated).
  static absl::StatusOr<std::unique_ptr<TenantCpuGroups>> Create(const std::vector<std::string>& tenants);
  // Removes the groups. Their processes must have exited (a group that still holds one
  // is left, with a message on stderr).
  ~TenantCpuGroups();
  TenantCpuGroups(const TenantCpuGroups&) = delete;
  TenantCpuGroups& operator=(const TenantCpuGroups&) = delete;

  // Moves `pid` (a whole process) into `tenant`'s group.
  absl::Status Add(const std::string& tenant, pid_t pid) const;

  // Which groups, their weights and caps: for the report.
  const std::string& description() const { return description_; }

 private:
  TenantCpuGroups(std::string parent, std::vector<std::string> tenants, std::string description)
      : parent_(std::move(parent)), tenants_(std::move(tenants)), description_(std::move(description)) {}
  std::string GroupOf(const std::string& tenant) const { return parent_ + "/" + tenant; }

  const std::string parent_;
  const std::vector<std::string> tenants_;
  const std::string description_;
};

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_TENANT_CPU_GROUPS_H_
