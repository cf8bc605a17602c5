#include "transport/cxl/region_mapping.h"

#include <fcntl.h>
#include <numa.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "common/scoped_fd.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace sparsepool {
namespace {

constexpr long kHugetlbfsMagic = 0x958458f6;

absl::Status ErrnoError(const std::string& what, int err) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  if (err == ENOMEM || err == ENOSPC) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

// The size of a device-DAX device, from sysfs.
absl::StatusOr<uint64_t> DevdaxSize(const std::string& path) {
  const absl::string_view name = absl::StripPrefix(path, "/dev/");
  const std::string sysfs = absl::StrCat("/sys/bus/dax/devices/", name, "/size");
  std::ifstream in(sysfs);
  std::string text;
  uint64_t size = 0;
  if (!(in >> text) || !absl::SimpleAtoi(text, &size)) {
    return absl::NotFoundError(absl::StrCat("cannot read the size of ", path, " from ", sysfs));
  }
  return size;
}

absl::StatusOr<std::byte*> MapShared(int fd, uint64_t size, const std::string& path) {
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return ErrnoError(absl::StrCat("mmap of ", size, " bytes of ", path), errno);
  return static_cast<std::byte*>(base);
}

absl::Status BindToNumaNode(std::byte* base, uint64_t size, int node, const std::string& path) {
  if (numa_available() < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("region ", path, " asks for NUMA node ", node, " but this host has no NUMA support"));
  }
  if (node > numa_max_node()) {
    return absl::InvalidArgumentError(absl::StrCat("region ", path, ": NUMA node ", node,
                                                   " does not exist (this host has nodes 0-",
                                                   numa_max_node(), ")"));
  }
  // A shm object keeps this policy for pages faulted later by any process.
  numa_tonode_memory(base, size, node);
  return absl::OkStatus();
}

// Gives the backing the owner, group and mode the spec names (a region dedicated to a
// tenant is mappable only by that tenant's workers). Applied at every start, so a file
// whose mode was loosened by hand is tightened again.
absl::Status SetAccess(int fd, const RegionSpec& spec) {
  if (spec.owner_uid || spec.group_gid) {
    const uid_t uid = spec.owner_uid ? static_cast<uid_t>(*spec.owner_uid) : static_cast<uid_t>(-1);
    const gid_t gid = spec.group_gid ? static_cast<gid_t>(*spec.group_gid) : static_cast<gid_t>(-1);
    if (fchown(fd, uid, gid) != 0) {
      return ErrnoError(absl::StrCat("giving region ", spec.path, " owner ",
                                     spec.owner_uid ? absl::StrCat(*spec.owner_uid) : "unchanged", " and group ",
                                     spec.group_gid ? absl::StrCat(*spec.group_gid) : "unchanged",
                                     " (the daemon needs to run as root, or as that owner, for owner=/group=)"),
                        errno);
    }
  }
  if (spec.mode && fchmod(fd, static_cast<mode_t>(*spec.mode)) != 0) {
    return ErrnoError(absl::StrCat("setting mode 0", absl::Hex(*spec.mode), " on region ", spec.path), errno);
  }
  return absl::OkStatus();
}

// Refuses a backing the daemon must not take over: a symbolic link (opened with
// O_NOFOLLOW), something other than a file (a character device for devdax), a file
// with other names (hard links), and, for a region whose access the daemon sets, a file
// it did not create that belongs to neither the daemon's user nor the configured owner:
// whoever made it may hold it open, and would keep reading what the region's tenant
// stores there whatever mode the daemon sets afterwards.
absl::Status CheckBacking(int fd, const RegionSpec& spec, bool created) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoError(absl::StrCat("stat ", spec.path), errno);
  const bool devdax = spec.kind == RegionKind::kDevdax;
  if (devdax ? !S_ISCHR(st.st_mode) : !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("region ", spec.path, " is not ",
                                                      devdax ? "a character device" : "a regular file"));
  }
  if (!devdax && st.st_nlink != 1) {
    return absl::FailedPreconditionError(absl::StrCat("region ", spec.path, " has ", st.st_nlink,
                                                      " names (hard links); a region file must have one"));
  }
  const bool access_set = spec.owner_uid || spec.group_gid || spec.mode || !spec.tenants.empty();
  if (access_set && !created && st.st_uid != geteuid() && (!spec.owner_uid || st.st_uid != *spec.owner_uid)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "region ", spec.path, " exists and belongs to uid ", st.st_uid,
        ", neither the daemon's user nor the configured owner: whoever made it may hold it open. Remove it (the "
        "daemon then creates it) or give it to the configured owner"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MappedRegion> MappedRegion::OpenOrCreate(const RegionSpec& spec) {
  const std::string& path = spec.path;
  if (spec.kind == RegionKind::kDevdax) {
    ScopedFd fd(open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) return ErrnoError(absl::StrCat("open ", path), errno);
    if (absl::Status backing = CheckBacking(fd.get(), spec, /*created=*/false); !backing.ok()) return backing;
    if (absl::Status access = SetAccess(fd.get(), spec); !access.ok()) return access;
    uint64_t size = spec.size_bytes;
    if (size == 0) {
      auto device_size = DevdaxSize(path);
      if (!device_size.ok()) return device_size.status();
      size = *device_size;
    }
    auto base = MapShared(fd.get(), size, path);
    if (!base.ok()) return base.status();
    return MappedRegion(*base, size, path, spec.kind, /*created=*/false);
  }

  bool created = false;
  int raw_fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (raw_fd < 0 && errno == ENOENT) {
    // Made with its final mode, so that no one can open it in between.
    raw_fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(spec.mode.value_or(0660)));
    created = raw_fd >= 0;
  }
  if (raw_fd < 0) return ErrnoError(absl::StrCat("open ", path), errno);
  ScopedFd fd(raw_fd);
  if (absl::Status backing = CheckBacking(fd.get(), spec, created); !backing.ok()) return backing;
  if (absl::Status access = SetAccess(fd.get(), spec); !access.ok()) {
    if (created) unlink(path.c_str());
    return access;
  }

  if (spec.kind == RegionKind::kHugetlbfs) {
    struct statfs fs;
    if (fstatfs(fd.get(), &fs) != 0 || fs.f_type != kHugetlbfsMagic) {
      if (created) unlink(path.c_str());
      return absl::InvalidArgumentError(
          absl::StrCat("region ", path, " is not on a hugetlbfs mount"));
    }
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoError(absl::StrCat("stat ", path), errno);
  const uint64_t existing = static_cast<uint64_t>(st.st_size);
  if (existing == 0) {
    if (ftruncate(fd.get(), static_cast<off_t>(spec.size_bytes)) != 0) {
      const int err = errno;
      if (created) unlink(path.c_str());
      return ErrnoError(absl::StrCat("sizing ", path, " to ", spec.size_bytes, " bytes"), err);
    }
    created = true;
  } else if (existing != spec.size_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "region ", path, " exists with ", existing, " bytes but ", spec.size_bytes,
        " were configured; refusing to resize a region that may hold data"));
  }
  auto base = MapShared(fd.get(), spec.size_bytes, path);
  if (!base.ok()) return base.status();
  MappedRegion region(*base, spec.size_bytes, path, spec.kind, created);
  if (spec.kind == RegionKind::kNuma) {
    absl::Status bound = BindToNumaNode(*base, spec.size_bytes, spec.numa_node, path);
    if (!bound.ok()) return bound;
  }
  // A tmpfs or hugetlbfs file sized with ftruncate has no memory behind it yet: the
  // first touch of each page allocates it, and when the file system or the host is
  // out of memory that touch kills the toucher (a decode worker, say) with SIGBUS.
  // Allocate it all now (after the NUMA policy is set, so that the pages follow it),
  // failing here with a clear error instead; it also takes the cost of first touches
  // off the first writes. Idempotent: a restart allocates only what is missing.
  if (int err = posix_fallocate(fd.get(), 0, static_cast<off_t>(spec.size_bytes)); err != 0) {
    if (created) unlink(path.c_str());  // nothing was in it: leave no half-made region
    return ErrnoError(absl::StrCat("allocating the ", spec.size_bytes, " bytes of region ", path,
                                   " (is its file system, or the host, short of memory?)"),
                      err);
  }
  return region;
}

absl::StatusOr<MappedRegion> MappedRegion::Attach(RegionKind kind, const std::string& path,
                                                  uint64_t expected_bytes) {
  ScopedFd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(absl::StrCat("open region ", path), errno);
  if (kind != RegionKind::kDevdax) {
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return ErrnoError(absl::StrCat("stat ", path), errno);
    if (static_cast<uint64_t>(st.st_size) != expected_bytes) {
      return absl::FailedPreconditionError(absl::StrCat("region ", path, " is ", st.st_size,
                                                        " bytes but the daemon said ",
                                                        expected_bytes));
    }
  }
  auto base = MapShared(fd.get(), expected_bytes, path);
  if (!base.ok()) return base.status();
  return MappedRegion(*base, expected_bytes, path, kind, /*created=*/false);
}

MappedRegion::MappedRegion(MappedRegion&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)),
      kind_(other.kind_),
      created_(other.created_) {}

MappedRegion& MappedRegion::operator=(MappedRegion&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, size_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
    kind_ = other.kind_;
    created_ = other.created_;
  }
  return *this;
}

MappedRegion::~MappedRegion() {
  if (base_ != nullptr) munmap(base_, size_);
}

}  // namespace sparsepool
