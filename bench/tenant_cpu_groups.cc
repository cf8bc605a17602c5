#include "bench/tenant_cpu_groups.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_text.h"
#include "common/scoped_fd.h"

namespace sparsepool::bench {
namespace {

// Control files take one write of their whole value (no temporary file and rename).
absl::Status WriteControl(const std::string& path, const std::string& value) {
  ScopedFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write \"", value, "\" to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status MakeGroup(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot make the control group ", path, ": ", std::strerror(errno),
        errno == EEXIST ? " (left by an earlier run whose process had this id: remove its tenant groups, then it)"
                        : " (it needs root)"));
  }
  return absl::OkStatus();
}

// A tenant's group under `parent`. Prefixed, so that no tenant's name can be one of the
// controllers' own files there ("tasks", "cpu.shares").
std::string GroupPath(const std::string& parent, absl::string_view tenant) {
  return absl::StrCat(parent, "/tenant-", tenant);
}

// Removes `parent`'s tenant groups, then `parent`; what is not there is no matter.
void RemoveGroups(const std::string& parent, const std::vector<std::string>& tenants) {
  for (const std::string& tenant : tenants) {
    const std::string group = GroupPath(parent, tenant);
    if (rmdir(group.c_str()) != 0 && errno != ENOENT) {
      std::fprintf(stderr, "sparsepool_load: cannot remove the control group %s: %s\n", group.c_str(),
                   std::strerror(errno));
    }
  }
  rmdir(parent.c_str());
}

// Whether the whitespace-separated words of `text` (a cgroup.controllers or
// cgroup.subtree_control) hold `word`, as a word: "cpuset" is not "cpu".
bool HasWord(absl::string_view text, absl::string_view word) {
  for (absl::string_view w : absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    if (w == word) return true;
  }
  return false;
}

// HasWord of the file at `path`; false when it cannot be read.
bool ListsWord(const std::string& path, absl::string_view word) {
  absl::StatusOr<std::string> text = ReadFileText(path, "cgroup controllers");
  return text.ok() && HasWord(*text, word);
}

// Hands `controller` down to `group`'s children (v2), unless it is already.
absl::Status HandDown(const std::string& group, absl::string_view controller) {
  const std::string control = group + "/cgroup.subtree_control";
  if (ListsWord(control, controller)) return absl::OkStatus();
  return WriteControl(control, absl::StrCat("+", controller));
}

struct Mounts {
  std::string cpu;      // the cpu controller's hierarchy
  bool v2 = false;      // cpu's is v2's unified one
  std::string cpuset;   // the cpuset controller's; empty: none (for v2, the same as cpu's)
};

// Where the cpu controller is mounted: v2's unified hierarchy when the cpu controller
// is in it (and cpuset with it, when it is there too), else v1's cpu hierarchy (and
// v1's cpuset one).
absl::StatusOr<Mounts> FindControllers() {
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  std::string v1_cpu, v1_cpuset;
  std::vector<std::string> v2;
  while (std::getline(mounts, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 4) continue;
    if (f[2] == "cgroup2") v2.push_back(f[1]);
    if (f[2] == "cgroup") {
      for (absl::string_view option : absl::StrSplit(f[3], ',')) {
        if (option == "cpu") v1_cpu = f[1];
        if (option == "cpuset") v1_cpuset = f[1];
      }
    }
  }
  for (const std::string& mount : v2) {
    absl::StatusOr<std::string> controllers = ReadFileText(mount + "/cgroup.controllers", "cgroup controllers");
    if (controllers.ok() && HasWord(*controllers, "cpu")) {
      return Mounts{mount, true, HasWord(*controllers, "cpuset") ? mount : ""};
    }
  }
  if (!v1_cpu.empty()) return Mounts{v1_cpu, false, v1_cpuset};
  return absl::FailedPreconditionError(
      "no cpu controller is mounted (neither cgroup v2 with \"cpu\" in cgroup.controllers nor a cgroup v1 cpu "
      "hierarchy): tenants' CPU shares cannot be set here; run with --control=false");
}

}  // namespace

std::vector<int> AllowedCores() {
  // Sized for the host's configured CPUs: a fixed cpu_set_t fails past 1024.
  const int count = std::max(1L, sysconf(_SC_NPROCESSORS_CONF));
  cpu_set_t* set = CPU_ALLOC(count);
  std::vector<int> cores;
  if (set == nullptr) return cores;
  const size_t size = CPU_ALLOC_SIZE(count);
  CPU_ZERO_S(size, set);
  if (sched_getaffinity(0, size, set) == 0) {
    for (int c = 0; c < count; ++c) {
      if (CPU_ISSET_S(c, size, set)) cores.push_back(c);
    }
  }
  CPU_FREE(set);
  return cores;
}

std::vector<std::vector<int>> PartitionCores(const std::vector<int>& cores, int tenants) {
  if (tenants <= 0 || cores.size() < static_cast<size_t>(tenants)) return {};
  std::vector<std::vector<int>> parts(tenants);
  const size_t each = cores.size() / tenants;
  for (int t = 0; t < tenants; ++t) parts[t].assign(cores.begin() + t * each, cores.begin() + (t + 1) * each);
  return parts;
}

std::string FormatCoreList(const std::vector<int>& cores) {
  std::vector<std::string> runs;
  for (size_t i = 0; i < cores.size();) {
    size_t j = i;
    while (j + 1 < cores.size() && cores[j + 1] == cores[j] + 1) ++j;
    runs.push_back(j == i ? absl::StrCat(cores[i]) : absl::StrCat(cores[i], "-", cores[j]));
    i = j + 1;
  }
  return absl::StrJoin(runs, ",");
}

absl::StatusOr<std::unique_ptr<TenantCpuGroups>> TenantCpuGroups::Create(const std::vector<std::string>& tenants,
                                                                         bool own_cores) {
  if (tenants.empty()) return absl::InvalidArgumentError("no tenants to make control groups for");
  for (const std::string& tenant : tenants) {
    if (tenant.empty() || tenant[0] == '.' || tenant.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("tenant name \"", tenant, "\" cannot name a control group (empty, a leading '.' or a '/')"));
    }
  }
  absl::StatusOr<Mounts> mounts = FindControllers();
  if (!mounts.ok()) return mounts.status();
  const std::vector<int> allowed = AllowedCores();
  if (allowed.empty()) {
    return absl::FailedPreconditionError("cannot read the cores this process may run on (sched_getaffinity failed)");
  }
  const int tenant_count = static_cast<int>(tenants.size());
  std::vector<std::vector<int>> cores = PartitionCores(allowed, tenant_count);
  std::string shared_why;
  if (!own_cores) {
    shared_why = "asked for";
  } else if (mounts->cpuset.empty()) {
    shared_why = "no cpuset controller";
  } else if (cores.empty()) {
    shared_why = absl::StrFormat("%d cores for %d tenants", allowed.size(), tenant_count);
  }
  if (!shared_why.empty()) cores.assign(tenants.size(), {});
  std::unique_ptr<TenantCpuGroups> groups(new TenantCpuGroups({}, tenants, cores));

  // Each tenant's bound, in CPU time per 100 ms period: its own cores' worth, or its
  // share of the cores all tenants share. Equal either way: the cores left over when
  // they do not divide go to no tenant.
  constexpr long kPeriodUs = 100000;
  const long quota_us = std::max(1000L, shared_why.empty()
                                            ? static_cast<long>(cores[0].size()) * kPeriodUs
                                            : static_cast<long>(allowed.size()) * kPeriodUs / tenant_count);
  const std::string name = absl::StrCat("sparsepool-load-", getpid());
  // Groups in the cpuset hierarchy need cores and memory nodes before a process can
  // join them: v2's take their parent's when not set, v1's start with none.
  const bool v1_cpusets =
      !mounts->v2 && !mounts->cpuset.empty() && (shared_why.empty() || mounts->cpuset == mounts->cpu);
  std::string mems;
  if (v1_cpusets) {
    absl::StatusOr<std::string> root_mems = ReadFileText(mounts->cpuset + "/cpuset.mems", "the root cpuset's nodes");
    if (!root_mems.ok()) return root_mems.status();
    mems = std::string(absl::StripAsciiWhitespace(*root_mems));
  }
  const auto make_parent = [&](const std::string& mount) -> absl::StatusOr<std::string> {
    const std::string parent = mount + "/" + name;
    if (absl::Status s = MakeGroup(parent); !s.ok()) return s;
    groups->parents_.push_back(parent);
    if (v1_cpusets && mount == mounts->cpuset) {
      if (absl::Status s = WriteControl(parent + "/cpuset.cpus", FormatCoreList(allowed)); !s.ok()) return s;
      if (absl::Status s = WriteControl(parent + "/cpuset.mems", mems); !s.ok()) return s;
    }
    if (mounts->v2) {  // before the children are made
      if (absl::Status s = HandDown(parent, "cpu"); !s.ok()) return s;
      if (shared_why.empty()) {
        if (absl::Status s = HandDown(parent, "cpuset"); !s.ok()) return s;
      }
    }
    for (const std::string& tenant : tenants) {
      if (absl::Status s = MakeGroup(GroupPath(parent, tenant)); !s.ok()) return s;
    }
    return parent;
  };

  // A v2 group's children get a controller only when the group hands it down (which
  // the root keeps after the groups are gone: it changes nothing for other groups).
  if (mounts->v2) {
    if (absl::Status s = HandDown(mounts->cpu, "cpu"); !s.ok()) return s;
    if (shared_why.empty()) {
      if (absl::Status s = HandDown(mounts->cpu, "cpuset"); !s.ok()) return s;
    }
  }
  absl::StatusOr<std::string> cpu_parent = make_parent(mounts->cpu);
  if (!cpu_parent.ok()) return cpu_parent.status();
  std::string cpuset_parent = *cpu_parent;
  if (v1_cpusets && mounts->cpuset != mounts->cpu) {
    absl::StatusOr<std::string> made = make_parent(mounts->cpuset);
    if (!made.ok()) return made.status();
    cpuset_parent = *made;
  }
  for (int t = 0; t < tenant_count; ++t) {
    const std::string group = GroupPath(*cpu_parent, tenants[t]);
    const std::vector<std::pair<std::string, std::string>> settings =
        mounts->v2 ? std::vector<std::pair<std::string, std::string>>{{"cpu.weight", "100"},
                                                                       {"cpu.max", absl::StrCat(quota_us, " ",
                                                                                                kPeriodUs)}}
                   : std::vector<std::pair<std::string, std::string>>{{"cpu.shares", "1024"},
                                                                       {"cpu.cfs_period_us", absl::StrCat(kPeriodUs)},
                                                                       {"cpu.cfs_quota_us", absl::StrCat(quota_us)}};
    for (const auto& [file, value] : settings) {
      if (absl::Status s = WriteControl(group + "/" + file, value); !s.ok()) return s;
    }
    if (shared_why.empty() || v1_cpusets) {
      const std::string cpuset_group = GroupPath(cpuset_parent, tenants[t]);
      const std::string list = FormatCoreList(shared_why.empty() ? cores[t] : allowed);
      if (absl::Status s = WriteControl(cpuset_group + "/cpuset.cpus", list); !s.ok()) return s;
      if (v1_cpusets) {
        if (absl::Status s = WriteControl(cpuset_group + "/cpuset.mems", mems); !s.ok()) return s;
      }
    }
  }

  std::vector<std::string> own;
  for (int t = 0; t < tenant_count; ++t) own.push_back(absl::StrCat(tenants[t], " ", FormatCoreList(cores[t])));
  groups->description_ = absl::StrFormat(
      "%s groups under %s (equal weights, each tenant capped at %.1f of %d cores, %s)",
      mounts->v2 ? "cgroup v2" : "cgroup v1",
      absl::StrJoin(groups->parents_, " and "), static_cast<double>(quota_us) / kPeriodUs, allowed.size(),
      shared_why.empty() ? absl::StrCat("on cores of its own: ", absl::StrJoin(own, ", "))
                         : absl::StrCat("on shared cores: ", shared_why));
  return groups;
}

TenantCpuGroups::~TenantCpuGroups() {
  for (const std::string& parent : parents_) RemoveGroups(parent, tenants_);
}

absl::Status TenantCpuGroups::Add(const std::string& tenant, pid_t pid) const {
  if (std::find(tenants_.begin(), tenants_.end(), tenant) == tenants_.end()) {
    return absl::NotFoundError(absl::StrCat("no control group for tenant \"", tenant, "\""));
  }
  for (const std::string& parent : parents_) {
    absl::Status s = WriteControl(GroupPath(parent, tenant) + "/cgroup.procs", absl::StrCat(pid));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

std::vector<int> TenantCpuGroups::CoresOf(absl::string_view tenant) const {
  for (size_t t = 0; t < tenants_.size(); ++t) {
    if (tenants_[t] == tenant) return cores_[t];
  }
  return {};
}

}  // namespace sparsepool::bench
