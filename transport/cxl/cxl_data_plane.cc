#include "transport/cxl/cxl_data_plane.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/region_format.h"
#include "transport/cxl/cpu_gather.h"
#include "transport/sequence_liveness.h"

namespace sparsepool {

absl::StatusOr<std::byte*> CxlDataPlane::RegionBase(const RegionRef& region) {
  const std::string key(reinterpret_cast<const char*>(region.uuid.data()), region.uuid.size());
  absl::MutexLock lock(&mu_);
  auto it = regions_.find(key);
  if (it != regions_.end()) return it->second->base();

  auto kind = ParseRegionKind(region.kind);
  if (!kind.ok()) return kind.status();
  auto mapped = MappedRegion::Attach(*kind, region.path, region.size_bytes);
  if (!mapped.ok()) return mapped.status();
  region_format::RegionHeader header;
  std::memcpy(&header, mapped->base(), sizeof(header));
  absl::Status valid = region_format::ValidateHeader(header, mapped->size(), region.path);
  if (!valid.ok()) return valid;
  if (header.uuid != region.uuid) {
    return absl::FailedPreconditionError(absl::StrCat(
        "region ", region.path, " holds pool ", region_format::UuidToString(header.uuid),
        " but the layout names pool ", region_format::UuidToString(region.uuid)));
  }
  std::byte* base = mapped->base();
  regions_.emplace(key, std::make_unique<MappedRegion>(*std::move(mapped)));
  return base;
}

absl::Status CxlDataPlane::GatherValidated(const GatherBatch& batch) {
  const size_t rows = batch.sequences.size();
  if (rows == 0) return absl::OkStatus();
  const size_t k = batch.indices.size() / rows;
  const size_t row_bytes = k * batch.sequences[0]->entry_bytes;
  // Each row's pages of this layer, and its record (in the home region: another region
  // when the sequence is striped).
  std::vector<const std::byte*> bases(rows);
  std::vector<const std::byte*> homes(rows);
  for (size_t row = 0; row < rows; ++row) {
    const SequenceLayout& seq = *batch.sequences[row];
    auto base = RegionBase(seq.LayerRegion(batch.layer));
    if (!base.ok()) return base.status();
    bases[row] = *base;
    auto home = seq.stripe_regions.empty() ? base : RegionBase(seq.region);
    if (!home.ok()) return home.status();
    homes[row] = *home;
  }
  const size_t units_per_row = (k + kCopyUnitEntries - 1) / kCopyUnitEntries;
  copy_workers_.ParallelFor(rows * units_per_row, [&](size_t unit) {
    const size_t row = unit / units_per_row;
    const size_t first = (unit % units_per_row) * kCopyUnitEntries;
    const size_t count = std::min(kCopyUnitEntries, k - first);
    const SequenceLayout& seq = *batch.sequences[row];
    CpuGatherRow(bases[row], seq, batch.layer, batch.indices.subspan(row * k + first, count),
                 batch.out.data() + row * row_bytes + first * seq.entry_bytes);
  });
  // Layouts may be stale (another client released a sequence): were they still live?
  for (size_t row = 0; row < rows; ++row) {
    const SequenceLayout& seq = *batch.sequences[row];
    if (absl::Status s = CheckSequenceLive(homes[row], seq); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status CxlDataPlane::WriteValidated(const WriteRange& range) {
  const SequenceLayout& seq = *range.sequence;
  auto base = RegionBase(seq.LayerRegion(range.layer));
  if (!base.ok()) return base.status();
  auto home = seq.stripe_regions.empty() ? base : RegionBase(seq.region);
  if (!home.ok()) return home.status();
  // Never write through a stale layout into pages another sequence may now hold; a
  // release racing this very write is reported after it.
  if (absl::Status s = CheckSequenceLive(*home, seq); !s.ok()) {
    return s;
  }
  const uint64_t count = range.entries.size() / seq.entry_bytes;
  const uint64_t units = (count + kCopyUnitEntries - 1) / kCopyUnitEntries;
  copy_workers_.ParallelFor(units, [&](size_t unit) {
    const uint64_t first = unit * kCopyUnitEntries;
    CpuScatterRange(*base, seq, range.layer, range.first_token + first,
                    std::min<uint64_t>(kCopyUnitEntries, count - first),
                    range.entries.data() + first * seq.entry_bytes);
  });
  return CheckSequenceLive(*home, seq);
}

}  // namespace sparsepool
