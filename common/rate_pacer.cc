#include "common/rate_pacer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/scoped_fd.h"

namespace sparsepool {
namespace {

// A shared pacer's file: a magic number ("sppacer1" in its bytes), then the time on a
// cache line of its own.
constexpr uint64_t kMagic = 0x3172656361707073;
constexpr size_t kTimeOffset = 64;
constexpr size_t kFileBytes = 128;

// Long before any time Reserve is given, with room below it for any tolerance.
constexpr int64_t kNever = std::numeric_limits<int64_t>::min() / 2;

absl::Status Errno(const char* what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " the pacer file ", path));
}

}  // namespace

RatePacer::RatePacer(uint64_t bytes_per_second, absl::Duration tolerance)
    : RatePacer(bytes_per_second, tolerance, "", nullptr, nullptr) {}

RatePacer::RatePacer(uint64_t bytes_per_second, absl::Duration tolerance, std::string path, void* mapping,
                     int64_t* paid_until)
    : bytes_per_second_(std::max<uint64_t>(1, bytes_per_second)),
      tolerance_ns_(absl::ToInt64Nanoseconds(std::max(tolerance, absl::ZeroDuration()))),
      path_(std::move(path)),
      mapping_(mapping),
      own_paid_until_ns_(kNever),
      paid_until_ns_(paid_until != nullptr ? paid_until : &own_paid_until_ns_) {}

RatePacer::~RatePacer() {
  if (mapping_ != nullptr) munmap(mapping_, kFileBytes);
}

absl::StatusOr<std::unique_ptr<RatePacer>> RatePacer::OpenShared(const std::string& path, uint64_t bytes_per_second,
                                                                 absl::Duration tolerance) {
  ScopedFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return Errno("opening", path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Errno("reading", path);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file: not a pacer's"));
  // A fresh file (or one its maker has not sized yet) is sized here; its zeros are a
  // time long past. Any other size is another file's.
  if (st.st_size == 0 && ftruncate(fd.get(), kFileBytes) != 0) return Errno("sizing", path);
  if (st.st_size != 0 && static_cast<uint64_t>(st.st_size) != kFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds ", st.st_size, " bytes, not a pacer's ", kFileBytes, ": another file of that name"));
  }
  void* mapping = mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (mapping == MAP_FAILED) return Errno("mapping", path);
  char* bytes = static_cast<char*>(mapping);
  // The first opener writes the magic, at once (openers may race); one that finds
  // another number is refused.
  uint64_t found = 0;
  __atomic_compare_exchange_n(reinterpret_cast<uint64_t*>(bytes), &found, kMagic, /*weak=*/false, __ATOMIC_ACQ_REL,
                              __ATOMIC_ACQUIRE);
  if (found != 0 && found != kMagic) {
    munmap(mapping, kFileBytes);
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a sparsepool pacer file (another file of that name)"));
  }
  auto* paid_until = reinterpret_cast<int64_t*>(bytes + kTimeOffset);
  return std::unique_ptr<RatePacer>(new RatePacer(bytes_per_second, tolerance, path, mapping, paid_until));
}

absl::Duration RatePacer::Reserve(uint64_t bytes, absl::Time now) {
  const int64_t cost_ns = static_cast<int64_t>(
      std::llround(static_cast<double>(bytes) * 1e9 / static_cast<double>(bytes_per_second_)));
  const int64_t now_ns = absl::ToUnixNanos(now);
  // Goes when what came before is paid for, less the tolerance; never before now. A
  // compare-and-swap loop, so that every thread and process on the time books in turn.
  int64_t paid = __atomic_load_n(paid_until_ns_, __ATOMIC_ACQUIRE);
  while (true) {
    const int64_t start = std::max(now_ns, paid - tolerance_ns_);
    const int64_t next = std::max(paid, start) + cost_ns;
    if (__atomic_compare_exchange_n(paid_until_ns_, &paid, next, /*weak=*/true, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      return absl::Nanoseconds(start - now_ns);
    }
  }
}

absl::Duration RatePacer::Acquire(uint64_t bytes) {
  // The monotonic clock as an absl::Time: only differences between its readings matter,
  // and every process on the host reads the same one.
  const absl::Time now = absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
  const absl::Duration wait = Reserve(bytes, now);
  if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
  return wait;
}

}  // namespace sparsepool
