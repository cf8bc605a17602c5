#include "common/rate_pacer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/monotonic_time.h"
#include "common/scoped_fd.h"

namespace sparsepool {
namespace {

// A shared pacer's file: a magic number ("sppacer1" in its bytes), then the time on a
// cache line of its own.
constexpr uint64_t kMagic = 0x3172656361707073;
constexpr size_t kTimeOffset = 64;
constexpr size_t kFileBytes = 128;
constexpr long kTmpfsMagic = 0x01021994;  // statfs's f_type of a tmpfs

// Bounds that keep the arithmetic in range: a tolerance of at most an hour, a call's
// cost of at most 10 days, and "long ago" with room below it for both.
constexpr int64_t kMaxToleranceNs = int64_t{3600} * 1'000'000'000;
constexpr int64_t kMaxCostNs = int64_t{10} * 24 * 3600 * 1'000'000'000;
constexpr int64_t kNever = std::numeric_limits<int64_t>::min() / 4;
// A time further ahead of now than this was not booked on this clock (another boot's,
// another clock's): the stream starts afresh rather than wait for it.
constexpr int64_t kMaxAheadNs = kMaxToleranceNs + kMaxCostNs;

absl::Status Errno(const char* what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " the pacer file ", path));
}

// Puts a complete pacer file at `path` unless one is there: written under a temporary
// name beside it and linked into place, so that no opener ever sees it half made.
absl::Status MakePacerFile(const std::string& path) {
  std::string temporary = path + ".XXXXXX";
  ScopedFd fd(mkostemp(temporary.data(), O_CLOEXEC));  // mode 0600
  if (!fd.valid()) return Errno("making a temporary file beside", path);
  struct Unlinker {
    const std::string& path;
    ~Unlinker() { unlink(path.c_str()); }
  } unlink_temporary{temporary};
  char bytes[kFileBytes] = {};
  std::memcpy(bytes, &kMagic, sizeof(kMagic));
  const int64_t never = kNever;
  std::memcpy(bytes + kTimeOffset, &never, sizeof(never));
  if (pwrite(fd.get(), bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) {
    return Errno("writing a temporary file beside", path);
  }
  if (link(temporary.c_str(), path.c_str()) != 0 && errno != EEXIST) return Errno("linking", path);
  return absl::OkStatus();
}

}  // namespace

RatePacer::RatePacer(uint64_t bytes_per_second, absl::Duration tolerance)
    : RatePacer(bytes_per_second, tolerance, "", nullptr, nullptr) {}

RatePacer::RatePacer(uint64_t bytes_per_second, absl::Duration tolerance, std::string path, void* mapping,
                     int64_t* paid_until)
    : bytes_per_second_(std::max<uint64_t>(1, bytes_per_second)),
      tolerance_ns_(std::clamp(absl::ToInt64Nanoseconds(tolerance), int64_t{0}, kMaxToleranceNs)),
      path_(std::move(path)),
      mapping_(mapping),
      own_paid_until_ns_(kNever),
      paid_until_ns_(paid_until != nullptr ? paid_until : &own_paid_until_ns_) {}

RatePacer::~RatePacer() {
  if (mapping_ != nullptr) munmap(mapping_, kFileBytes);
}

absl::StatusOr<std::unique_ptr<RatePacer>> RatePacer::OpenShared(const std::string& path, uint64_t bytes_per_second,
                                                                 absl::Duration tolerance) {
  // O_NONBLOCK: a FIFO or device of that name is not waited on before it is refused.
  const auto open_existing = [&path] {
    return ScopedFd(open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  };
  ScopedFd fd = open_existing();
  if (!fd.valid() && errno == ENOENT) {  // the first opener makes it
    if (absl::Status made = MakePacerFile(path); !made.ok()) return made;
    fd = open_existing();
  }
  if (!fd.valid() && errno == ELOOP) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a symbolic link: a pacer file must be the file itself"));
  }
  if (!fd.valid()) return Errno("opening", path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Errno("reading", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file: not a pacer's"));
  }
  if (static_cast<uint64_t>(st.st_size) != kFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds ", st.st_size, " bytes, not a pacer's ", kFileBytes, ": another file of that name"));
  }
  // Another user's file, or one others may write, could hold any time: every process
  // on it would wait as long.
  if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " belongs to user ", st.st_uid, " with mode ",
                                                   absl::StrFormat("%04o", st.st_mode & 07777),
                                                   ": a pacer file must be this user's alone (mode 0600)"));
  }
  // Its time is the monotonic clock's, which starts again at every boot: the file must
  // go with the boot, as a tmpfs's do.
  struct statfs fs;
  if (fstatfs(fd.get(), &fs) != 0) return Errno("reading the file system of", path);
  if (static_cast<long>(fs.f_type) != kTmpfsMagic) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not on a tmpfs (such as /dev/shm): a pacer's time must not outlive the boot"));
  }
  void* mapping = mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (mapping == MAP_FAILED) return Errno("mapping", path);
  char* bytes = static_cast<char*>(mapping);
  if (__atomic_load_n(reinterpret_cast<uint64_t*>(bytes), __ATOMIC_ACQUIRE) != kMagic) {
    munmap(mapping, kFileBytes);
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a sparsepool pacer file (another file of that name)"));
  }
  auto* paid_until = reinterpret_cast<int64_t*>(bytes + kTimeOffset);
  return std::unique_ptr<RatePacer>(new RatePacer(bytes_per_second, tolerance, path, mapping, paid_until));
}

absl::Duration RatePacer::Reserve(uint64_t bytes, absl::Time now) {
  const double cost = static_cast<double>(bytes) * 1e9 / static_cast<double>(bytes_per_second_);
  const int64_t cost_ns =
      cost >= static_cast<double>(kMaxCostNs) ? kMaxCostNs : static_cast<int64_t>(std::llround(cost));
  const int64_t now_ns = absl::ToUnixNanos(now);
  // Goes when what came before is paid for, less the tolerance; never before now. A
  // compare-and-swap loop, so that every thread and process on the time books in turn.
  int64_t paid = __atomic_load_n(paid_until_ns_, __ATOMIC_ACQUIRE);
  while (true) {
    const int64_t behind = paid > now_ns && paid - now_ns > kMaxAheadNs ? kNever : paid;
    const int64_t start = std::max(now_ns, behind - tolerance_ns_);
    const int64_t next = std::max(behind, start) + cost_ns;
    if (__atomic_compare_exchange_n(paid_until_ns_, &paid, next, /*weak=*/true, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      return absl::Nanoseconds(start - now_ns);
    }
  }
}

absl::Duration RatePacer::Acquire(uint64_t bytes) {
  const absl::Duration wait = Reserve(bytes, MonotonicNow());
  if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
  return wait;
}

}  // namespace sparsepool
