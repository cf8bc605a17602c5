// A region mapped into this process: the daemon maps it to keep its metadata there, a
// worker maps the same memory to load and store entries directly. Owns the mapping
// (unmapped on destruction) and nothing else: the backing file or device outlives it,
// which is what lets a restarted daemon find its data again.
#ifndef SPARSEPOOL_TRANSPORT_CXL_REGION_MAPPING_H_
#define SPARSEPOOL_TRANSPORT_CXL_REGION_MAPPING_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "transport/cxl/region_spec.h"

namespace sparsepool {

class MappedRegion {
 public:
  // Daemon side: maps the backing named by `spec`, creating and sizing a shm or
  // hugetlbfs file that does not exist yet. An existing backing of another size is
  // refused, never resized: it may hold another pool's data. For kNuma the pages are
  // bound to the node before anything touches them.
  static absl::StatusOr<MappedRegion> OpenOrCreate(const RegionSpec& spec);

  // Worker side: maps an existing region of `expected_bytes` read-write, as the daemon
  // described it in a layout.
  static absl::StatusOr<MappedRegion> Attach(RegionKind kind, const std::string& path,
                                             uint64_t expected_bytes);

  MappedRegion(MappedRegion&& other) noexcept;
  MappedRegion& operator=(MappedRegion&& other) noexcept;
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  ~MappedRegion();

  std::byte* base() const { return base_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  RegionKind kind() const { return kind_; }
  // True when OpenOrCreate made the backing (it holds only zeros).
  bool created() const { return created_; }

 private:
  MappedRegion(std::byte* base, uint64_t size, std::string path, RegionKind kind, bool created)
      : base_(base), size_(size), path_(std::move(path)), kind_(kind), created_(created) {}

  std::byte* base_ = nullptr;
  uint64_t size_ = 0;
  std::string path_;
  RegionKind kind_ = RegionKind::kShm;
  bool created_ = false;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_CXL_REGION_MAPPING_H_
