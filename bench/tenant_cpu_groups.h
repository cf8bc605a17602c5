// Each tenant's decode workers on this host in a CPU control group of its own, all with
// the same weight, each capped at its share of the cores (cores / tenants) and, where
// the cpuset controller is there, given that share as cores of its own (the cores left
// over when they do not divide go to no tenant, so the shares stay equal): the kernel then
// shares the cores between tenants, not between processes, so a tenant running 31
// workers gets no more CPU than one running one whenever both want it.
//
// Why a cap and not only weights (measured on the 16-core device host, docs/
// reliability.md): weights alone left a quiet tenant's p99 at 2.1x its p99 alone
// beside a 31-worker flood, though it had its core: what the flood took from it was
// memory bandwidth, which weights do not divide (the flood's weight covers 15 cores'
// worth of copies). Capping the flood's CPU time caps the bandwidth its copies can
// draw. The price: a tenant alone on the host cannot use more than its share
// (not work-conserving).
//
// Why cores of its own on top of the cap: with the cores shared, a quiet worker's copy
// thread that wakes finds every core running one of the flood's and waits for the
// scheduler to preempt it, and the flood's quota, spent early in a period, throttles
// and releases all of its threads at once; both are a quiet step's tail. Disjoint
// cpusets leave a tenant's threads waiting only for its own (and the daemon's, which
// runs on any core).
//
// Why here and not in the daemon: on the CPU path (CXL load/store, or host memory) the
// daemon does no work on a step; each worker copies its own entries with its own copy
// threads, so what tenants contend for is this host's cores, and the fair share of
// them is the scheduler's to enforce. In production the same is one systemd slice (or
// container) per tenant with equal CPUWeight, CPUQuota and AllowedCPUs (systemd.resource-
// control(5)); sparsepool-load makes the groups itself so that the comparison with and
// without them is one command.
//
// cgroup v2 (cpu.weight, cpu.max, cpuset.cpus) where its cpu controller is available,
// else v1's cpu controller (cpu.shares, cpu.cfs_quota_us) and its cpuset hierarchy
// (cpuset.cpus, cpuset.mems). Needs root. In v2 the root's cgroup.subtree_control keeps
// the cpu and cpuset controllers handed down after the groups are gone (harmless: other
// groups set nothing with them).
#ifndef SPARSEPOOL_BENCH_TENANT_CPU_GROUPS_H_
#define SPARSEPOOL_BENCH_TENANT_CPU_GROUPS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparsepool::bench {

// The cores this process may run on (its affinity), in ascending order.
std::vector<int> AllowedCores();

// `cores` split into `tenants` equal runs of consecutive entries (the ones left over
// when they do not divide are in none); empty when there are fewer cores than tenants,
// which cannot each have one.
std::vector<std::vector<int>> PartitionCores(const std::vector<int>& cores, int tenants);

// The kernel's list format, ranges where consecutive: {0,1,2,5} is "0-2,5".
std::string FormatCoreList(const std::vector<int>& cores);

class TenantCpuGroups {
 public:
  // Makes `sparsepool-load-PID/tenant-TENANT` under the cpu controller's mount (and the cpuset
  // controller's, where it has one of its own) for each of `tenants`, with equal weights
  // and caps, and with `own_cores` each tenant's cores (PartitionCores of AllowedCores)
  // where the cpuset controller is there and each tenant can have one. FailedPrecondition
  // saying why when it cannot (no cpu controller mounted, not root, v2 without the cpu
  // controller delegated, a group of this process's id left by an earlier run).
  static absl::StatusOr<std::unique_ptr<TenantCpuGroups>> Create(const std::vector<std::string>& tenants,
                                                                  bool own_cores = true);
  // Removes the groups. Their processes must have exited (a group that still holds one
  // is left, with a message on stderr).
  ~TenantCpuGroups();
  TenantCpuGroups(const TenantCpuGroups&) = delete;
  TenantCpuGroups& operator=(const TenantCpuGroups&) = delete;

  // Moves `pid` (a whole process, every thread) into `tenant`'s groups.
  absl::Status Add(const std::string& tenant, pid_t pid) const;

  // `tenant`'s cores; empty where tenants share the cores (asked to, no cpuset
  // controller, or fewer cores than tenants) and for a tenant it has no group for.
  std::vector<int> CoresOf(absl::string_view tenant) const;

  // Which groups, their weights, caps and cores: for the report.
  const std::string& description() const { return description_; }

 private:
  TenantCpuGroups(std::vector<std::string> parents, std::vector<std::string> tenants,
                  std::vector<std::vector<int>> cores)
      : parents_(std::move(parents)), tenants_(std::move(tenants)), cores_(std::move(cores)) {}

  // One parent per hierarchy the groups are in: v2's one, or v1's cpu and cpuset.
  std::vector<std::string> parents_;
  const std::vector<std::string> tenants_;
  std::vector<std::vector<int>> cores_;  // by tenant, as tenants_; empty: shared
  std::string description_;
};

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_TENANT_CPU_GROUPS_H_
