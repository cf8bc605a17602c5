#include "bench/tenant_cpu_groups.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
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
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(absl::StrCat("cannot make the control group ", path, ": ",
                                                      std::strerror(errno), " (it needs root)"));
  }
  return absl::OkStatus();
}

struct Controller {
  std::string mount;
  bool v2 = false;
};

// Where the cpu controller is mounted: v2's unified hierarchy when the cpu controller
// is in it, else v1's cpu hierarchy.
absl::StatusOr<Controller> FindCpuController() {
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  std::string v1;
  std::vector<std::string> v2;
  while (std::getline(mounts, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 4) continue;
    if (f[2] == "cgroup2") v2.push_back(f[1]);
    if (f[2] == "cgroup") {
      for (absl::string_view option : absl::StrSplit(f[3], ',')) {
        if (option == "cpu") v1 = f[1];
      }
    }
  }
  for (const std::string& mount : v2) {
    absl::StatusOr<std::string> controllers = ReadFileText(mount + "/cgroup.controllers", "cgroup controllers");
    if (!controllers.ok()) continue;
    for (absl::string_view c : absl::StrSplit(*controllers, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
      if (c == "cpu") return Controller{mount, true};
    }
  }
  if (!v1.empty()) return Controller{v1, false};
  return absl::FailedPreconditionError(
      "no cpu controller is mounted (neither cgroup v2 with \"cpu\" in cgroup.controllers nor a cgroup v1 cpu "
      "hierarchy): tenants' CPU shares cannot be set here; run with --control=false");
}

}  // namespace

absl::StatusOr<std::unique_ptr<TenantCpuGroups>> TenantCpuGroups::Create(const std::vector<std::string>& tenants) {
  for (const std::string& tenant : tenants) {
    if (tenant.empty() || tenant[0] == '.' || tenant.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("tenant name \"", tenant, "\" cannot name a control group (empty, a leading '.' or a '/')"));
    }
  }
  absl::StatusOr<Controller> controller = FindCpuController();
  if (!controller.ok()) return controller.status();
  const std::string parent = absl::StrCat(controller->mount, "/sparsepool-load-", getpid());
  if (controller->v2) {
    // The root's children get the cpu controller only when the root hands it down.
    absl::StatusOr<std::string> handed = ReadFileText(controller->mount + "/cgroup.subtree_control", "cgroup");
    bool cpu_handed = false;
    if (handed.ok()) {
      for (absl::string_view c : absl::StrSplit(*handed, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
        cpu_handed |= c == "cpu";  // a word: "cpuset" is another controller
      }
    }
    if (!cpu_handed) {
      if (absl::Status s = WriteControl(controller->mount + "/cgroup.subtree_control", "+cpu"); !s.ok()) return s;
    }
  }
  if (absl::Status s = MakeGroup(parent); !s.ok()) return s;
  // Each tenant's bound: its share of the host's cores, in CPU time per 100 ms period.
  const long cores = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  constexpr long kPeriodUs = 100000;
  const long quota_us = std::max(1000L, cores * kPeriodUs / static_cast<long>(tenants.size()));
  std::unique_ptr<TenantCpuGroups> groups(new TenantCpuGroups(
      parent, tenants,
      absl::StrFormat("%s groups under %s (equal weights, each tenant capped at %.1f of %d cores)",
                      controller->v2 ? "cgroup v2" : "cgroup v1", parent,
                      static_cast<double>(quota_us) / kPeriodUs, cores)));
  if (controller->v2) {
    if (absl::Status s = WriteControl(parent + "/cgroup.subtree_control", "+cpu"); !s.ok()) return s;
  }
  for (const std::string& tenant : tenants) {
    const std::string group = groups->GroupOf(tenant);
    if (absl::Status s = MakeGroup(group); !s.ok()) return s;
    const std::vector<std::pair<std::string, std::string>> settings =
        controller->v2 ? std::vector<std::pair<std::string, std::string>>{{"cpu.weight", "100"},
                                                                           {"cpu.max", absl::StrCat(quota_us, " ",
                                                                                                    kPeriodUs)}}
                       : std::vector<std::pair<std::string, std::string>>{{"cpu.shares", "1024"},
                                                                           {"cpu.cfs_period_us",
                                                                            absl::StrCat(kPeriodUs)},
                                                                           {"cpu.cfs_quota_us", absl::StrCat(quota_us)}};
    for (const auto& [file, value] : settings) {
      if (absl::Status s = WriteControl(group + "/" + file, value); !s.ok()) return s;
    }
  }
  return groups;
}

TenantCpuGroups::~TenantCpuGroups() {
  for (const std::string& tenant : tenants_) {
    const std::string group = GroupOf(tenant);
    if (rmdir(group.c_str()) != 0 && errno != ENOENT) {
      std::fprintf(stderr, "sparsepool_load: cannot remove the control group %s: %s\n", group.c_str(),
                   std::strerror(errno));
    }
  }
  rmdir(parent_.c_str());
}

absl::Status TenantCpuGroups::Add(const std::string& tenant, pid_t pid) const {
  return WriteControl(GroupOf(tenant) + "/cgroup.procs", absl::StrCat(pid));
}

}  // namespace sparsepool::bench
