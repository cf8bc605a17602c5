// The load/store data plane: the worker maps the daemon's regions (shm, hugetlbfs,
// devdax, NUMA-bound memory) and copies entries with the CPU. Regions are mapped the
// first time a layout names them and kept until the data plane is destroyed.
//
// A gather or a write is split into parts of at most kCopyUnitEntries entries, run on
// `copy_threads` threads (the caller's included): one core keeps too few cache misses
// (and page faults) in flight to move entries at memory speed (docs/benchmarks.md).
//
// Thread-safe: Gather and Write may run concurrently from several threads (one that
// finds the copy threads busy runs on its caller alone).
#ifndef SPARSEPOOL_TRANSPORT_CXL_CXL_DATA_PLANE_H_
#define SPARSEPOOL_TRANSPORT_CXL_CXL_DATA_PLANE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/layout.h"
#include "common/worker_pool.h"
#include "transport/cxl/region_mapping.h"
#include "transport/data_plane.h"

namespace sparsepool {

class CxlDataPlane final : public DataPlane {
 public:
  // Entries per unit of work: 256 x 656 B is 164 KiB, 30-40 microseconds on one
  // core, so claiming a unit costs little, and one top-2048 row still splits eight ways.
  static constexpr size_t kCopyUnitEntries = 256;

  // REQUIRES: copy_threads >= 1.
  explicit CxlDataPlane(int copy_threads = 1) : copy_workers_(copy_threads) {}
  const char* name() const override { return "cxl"; }

  // Maps the region (once) and checks that it holds the pool the layout came from:
  // the header must be intact and carry the layout's region uuid.
  absl::StatusOr<std::byte*> RegionBase(const RegionRef& region);

 protected:
  absl::Status GatherValidated(const GatherBatch& batch) override;
  absl::Status WriteValidated(const WriteRange& range) override;

 private:
  absl::Mutex mu_;
  // Keyed by region uuid: a path may be reused by another pool after a re-format.
  absl::flat_hash_map<std::string, std::unique_ptr<MappedRegion>> regions_ ABSL_GUARDED_BY(mu_);
  WorkerPool copy_workers_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_CXL_CXL_DATA_PLANE_H_
