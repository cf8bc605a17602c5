#include "transport/cxl/region_spec.h"

#include <grp.h>
#include <pwd.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/units.h"

namespace sparsepool {
namespace {

// A bare name lives under /dev/shm; an absolute path is taken as it is (tests use
// files of their own).
absl::StatusOr<std::string> ShmPath(absl::string_view name, absl::string_view spec) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat("region \"", spec, "\" has an empty name"));
  if (name.front() == '/') return std::string(name);
  if (name.find('/') != absl::string_view::npos || name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat("region \"", spec, "\": shm name \"", name,
                                                   "\" must be a plain name or an absolute path"));
  }
  return absl::StrCat("/dev/shm/", name);
}

absl::StatusOr<uint64_t> RegionSize(absl::string_view text, absl::string_view spec) {
  auto size = ParseByteSize(text);
  if (!size.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("region \"", spec, "\": ", size.status().message()));
  }
  if (*size == 0) return absl::InvalidArgumentError(absl::StrCat("region \"", spec, "\" has size 0"));
  return *size;
}

// A user or group by number, or by name through the system's databases (NSS):
// `lookup(name, buffer)` returns the id, or nullopt when there is no such entry.
template <typename Lookup>
absl::StatusOr<uint32_t> AccountId(absl::string_view text, absl::string_view spec, const char* what, Lookup lookup) {
  uint32_t id = 0;
  if (absl::SimpleAtoi(text, &id)) {
    // (uid_t)-1 tells fchown "leave it": it names nobody.
    if (id == UINT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat("region \"", spec, "\": ", text, " is no ", what, " id"));
    }
    return id;
  }
  std::vector<char> buffer(16384);
  if (std::optional<uint32_t> found = lookup(std::string(text), buffer)) return *found;
  return absl::InvalidArgumentError(absl::StrCat("region \"", spec, "\": no ", what, " \"", text, "\" on this host"));
}

absl::StatusOr<uint32_t> UserId(absl::string_view text, absl::string_view spec) {
  return AccountId(text, spec, "user", [](const std::string& name, std::vector<char>& buffer) -> std::optional<uint32_t> {
    passwd entry{};
    passwd* found = nullptr;
    if (getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) return {};
    return static_cast<uint32_t>(found->pw_uid);
  });
}

absl::StatusOr<uint32_t> GroupId(absl::string_view text, absl::string_view spec) {
  return AccountId(text, spec, "group", [](const std::string& name, std::vector<char>& buffer) -> std::optional<uint32_t> {
    group entry{};
    group* found = nullptr;
    if (getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) return {};
    return static_cast<uint32_t>(found->gr_gid);
  });
}

absl::Status ParseOption(absl::string_view option, absl::string_view text, RegionSpec& spec) {
  const size_t eq = option.find('=');
  const absl::string_view key = option.substr(0, eq);
  const absl::string_view value = eq == absl::string_view::npos ? "" : option.substr(eq + 1);
  if (eq == absl::string_view::npos || value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("region \"", text, "\": option \"", option, "\" should look like KEY=VALUE"));
  }
  if (key == "tenant") {
    spec.tenants.emplace_back(value);
  } else if (key == "owner") {
    auto uid = UserId(value, text);
    if (!uid.ok()) return uid.status();
    spec.owner_uid = *uid;
  } else if (key == "group") {
    auto gid = GroupId(value, text);
    if (!gid.ok()) return gid.status();
    spec.group_gid = *gid;
  } else if (key == "mode") {
    uint32_t mode = 0;
    bool octal = value.size() <= 4;
    for (char c : value) {
      octal = octal && c >= '0' && c <= '7';
      mode = mode * 8 + static_cast<uint32_t>(c - '0');
    }
    if (!octal || mode > 0777) {
      return absl::InvalidArgumentError(absl::StrCat("region \"", text, "\": mode \"", value,
                                                     "\" is not octal permission bits (at most 0777)"));
    }
    spec.mode = mode;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("region \"", text, "\": unknown option \"", key,
                                                   "\" (expected tenant, owner, group or mode)"));
  }
  return absl::OkStatus();
}

}  // namespace

const char* RegionKindName(RegionKind kind) {
  switch (kind) {
    case RegionKind::kShm:
      return "shm";
    case RegionKind::kHugetlbfs:
      return "hugetlbfs";
    case RegionKind::kDevdax:
      return "devdax";
    case RegionKind::kNuma:
      return "numa";
  }
  return "unknown";
}

absl::StatusOr<RegionKind> ParseRegionKind(absl::string_view name) {
  for (RegionKind kind :
       {RegionKind::kShm, RegionKind::kHugetlbfs, RegionKind::kDevdax, RegionKind::kNuma}) {
    if (name == RegionKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown region kind \"", name, "\" (expected shm, hugetlbfs, devdax or numa)"));
}

absl::StatusOr<RegionSpec> ParseRegionSpec(absl::string_view text) {
  const std::vector<absl::string_view> options = absl::StrSplit(text, ',');
  const std::vector<absl::string_view> parts = absl::StrSplit(options[0], ':');
  auto kind = ParseRegionKind(parts[0]);
  if (!kind.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("region \"", text, "\": ", kind.status().message()));
  }
  RegionSpec spec;
  spec.kind = *kind;
  auto wrong_shape = [&](const char* shape) {
    return absl::InvalidArgumentError(absl::StrCat("region \"", text, "\" should look like ", shape));
  };
  switch (spec.kind) {
    case RegionKind::kShm: {
      if (parts.size() != 3) return wrong_shape("shm:NAME:SIZE");
      auto path = ShmPath(parts[1], text);
      if (!path.ok()) return path.status();
      spec.path = *path;
      auto size = RegionSize(parts[2], text);
      if (!size.ok()) return size.status();
      spec.size_bytes = *size;
      break;
    }
    case RegionKind::kHugetlbfs: {
      if (parts.size() != 3 || parts[1].empty() || parts[1].front() != '/') {
        return wrong_shape("hugetlbfs:/ABSOLUTE/PATH:SIZE");
      }
      spec.path = std::string(parts[1]);
      auto size = RegionSize(parts[2], text);
      if (!size.ok()) return size.status();
      spec.size_bytes = *size;
      break;
    }
    case RegionKind::kDevdax: {
      if (parts.size() < 2 || parts.size() > 3 || !absl::StartsWith(parts[1], "/dev/dax")) {
        return wrong_shape("devdax:/dev/daxX.Y[:SIZE]");
      }
      spec.path = std::string(parts[1]);
      if (parts.size() == 3) {
        auto size = RegionSize(parts[2], text);
        if (!size.ok()) return size.status();
        spec.size_bytes = *size;
      }
      break;
    }
    case RegionKind::kNuma: {
      if (parts.size() != 4) return wrong_shape("numa:NODE:NAME:SIZE");
      if (!absl::SimpleAtoi(parts[1], &spec.numa_node) || spec.numa_node < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("region \"", text, "\": NUMA node \"", parts[1], "\" is not a node number"));
      }
      auto path = ShmPath(parts[2], text);
      if (!path.ok()) return path.status();
      spec.path = *path;
      auto size = RegionSize(parts[3], text);
      if (!size.ok()) return size.status();
      spec.size_bytes = *size;
      break;
    }
  }
  for (size_t i = 1; i < options.size(); ++i) {
    if (absl::Status parsed = ParseOption(options[i], text, spec); !parsed.ok()) return parsed;
  }
  if (!spec.tenants.empty() && !spec.mode) spec.mode = spec.group_gid ? 0660 : 0600;
  return spec;
}

}  // namespace sparsepool
