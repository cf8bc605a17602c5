#include "kernels/topk_gather.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "kernels/cuda_pointer.h"
#include "kernels/topk_gather_kernels.h"

namespace sparsepool::kernels {
absl::Status LaunchTopKGather(const GatherLaunch& p, cudaStream_t stream) {
  if (p.batch == 0 || p.k == 0) return absl::OkStatus();
  if (p.entry_bytes == 0) return absl::InvalidArgumentError("entry_bytes is 0");
  if (p.region_bytes == 0) return absl::InvalidArgumentError("region_bytes is 0");
  const uint64_t needed = uint64_t{p.batch} * p.k * p.entry_bytes;
  if (p.out_bytes < needed) {
    return absl::InvalidArgumentError(absl::StrCat("output buffer of ", p.out_bytes, " bytes, expected ",
                                                   needed, " (", p.batch, " rows x ", p.k, " x ",
                                                   p.entry_bytes, " bytes)"));
  }
  if (uint64_t{p.batch} * p.k > (uint64_t{1} << 31)) {
    return absl::InvalidArgumentError(absl::StrCat("batch ", p.batch, " x k ", p.k, " is too large"));
  }
  for (auto [pointer, name] : {std::pair<const void*, const char*>{p.rows, "rows"},
                               {p.indices, "indices"},
                               {p.out, "out"},
                               {p.fault, "fault"}}) {
    if (absl::Status s = CheckGpuPointer(pointer, name); !s.ok()) return s;
  }
  // Null when every row names its own region (RowPages::region).
  if (p.region != nullptr) {
    if (absl::Status s = CheckGpuPointer(p.region, "region"); !s.ok()) return s;
  }
  if (p.out_flat != nullptr) {
    if (absl::Status s = CheckGpuPointer(p.out_flat, "out_flat"); !s.ok()) return s;
  }
  if (absl::Status s = CheckStream(stream); !s.ok()) return s;
  int device = 0;
  int sms = 132;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const uint32_t cap = p.max_blocks == 0 ? ~0u : p.max_blocks;
  // The sorted kernel packs a region offset and a position into one 64-bit key.
  const bool sortable = p.k <= kMaxSortedK && p.region_bytes < (uint64_t{1} << 52);
  cudaError_t launched;
  const uint64_t entries = uint64_t{p.batch} * p.k;
  const bool batch_sortable = p.algorithm == GatherAlgorithm::kBatchSortedByAddress &&
                              p.scratch != nullptr && entries <= kMaxBatchSortedEntries &&
                              p.region_bytes <= kMaxBatchSortedRegion;
  if (batch_sortable && p.scratch_bytes < BatchSortScratchBytes(entries)) {
    return absl::InvalidArgumentError(absl::StrCat("scratch of ", p.scratch_bytes, " bytes, the batch sort needs ",
                                                   BatchSortScratchBytes(entries)));
  }
  if (batch_sortable) {
    launched = LaunchBatchSorted(p, static_cast<int>(std::min<uint32_t>(8 * sms, std::max<uint32_t>(cap, 1))), stream);
  } else if (p.algorithm != GatherAlgorithm::kWarpPerEntry && sortable) {
    // Enough blocks to keep every SM busy: several per row, each on its slice of the
    // sorted list (the sort itself is repeated per block; it is cheap next to the copy).
    uint32_t slices = p.slices_per_row != 0 ? p.slices_per_row
                                            : std::max<uint32_t>(1, std::min<uint32_t>(16, (4 * sms + p.batch - 1) / p.batch));
    slices = std::max<uint32_t>(1, std::min<uint32_t>(slices, cap / p.batch));
    launched = LaunchSorted(p, slices, stream);
  } else {
    launched = LaunchWarpPerEntry(p, static_cast<int>(std::min<uint32_t>(8 * sms, std::max<uint32_t>(cap, 1))), stream);
  }
  if (launched != cudaSuccess) {
    return absl::InternalError(absl::StrCat("gather launch failed: ", cudaGetErrorString(launched)));
  }
  return absl::OkStatus();
}

uint64_t GatherScratchBytes(uint64_t batch_times_k) { return BatchSortScratchBytes(batch_times_k); }

absl::Status LaunchWriteBack(const WriteBackLaunch& p, cudaStream_t stream) {
  if (p.batch == 0) return absl::OkStatus();
  if (p.entry_bytes == 0) return absl::InvalidArgumentError("entry_bytes is 0");
  if (p.region_bytes == 0) return absl::InvalidArgumentError("region_bytes is 0");
  for (auto [pointer, name] : {std::pair<const void*, const char*>{p.rows, "rows"},
                               {p.entries, "entries"},
                               {p.fault, "fault"}}) {
    if (absl::Status s = CheckGpuPointer(pointer, name); !s.ok()) return s;
  }
  for (auto [pointer, name] : {std::pair<const void*, const char*>{p.region, "region"}, {p.tokens, "tokens"}}) {
    if (pointer == nullptr) continue;  // optional: rows carry regions; the rows' last tokens
    if (absl::Status s = CheckGpuPointer(pointer, name); !s.ok()) return s;
  }
  if (cudaError_t e = LaunchWriteBackKernel(p, stream); e != cudaSuccess) {
    cudaGetLastError();
    return absl::InternalError(absl::StrCat("write-back launch failed: ", cudaGetErrorString(e)));
  }
  return absl::OkStatus();
}

absl::Status FaultToStatus(const GatherFault& fault, absl::Span<const uint64_t> sequence_ids,
                           absl::Span<const uint64_t> tokens, uint32_t layer) {
  if (fault.flag == 0) return absl::OkStatus();
  const size_t row = static_cast<size_t>(fault.row);
  const std::string sequence = row < sequence_ids.size() ? absl::StrCat(sequence_ids[row]) : "?";
  const std::string where = absl::StrCat("batch row ", row, ", position ", fault.position, " (sequence ",
                                         sequence, ", layer ", layer, ")");
  switch (fault.flag) {
    case kFaultDuplicateToken:
      return absl::InvalidArgumentError(
          absl::StrCat("token index ", fault.index, " appears twice in ", where));
    case kFaultCapacity:
      return absl::ResourceExhaustedError(absl::StrCat(
          "more misses than free or evictable residency-cache slots at ", where,
          ": token ", fault.index, " got no slot; give the cache more capacity than k"));
    case kFaultReleased:
      return absl::NotFoundError(absl::StrCat("sequence ", sequence, " (batch row ", row, ", layer ", layer,
                                              ") was released before its write-back ran; token ", fault.index,
                                              " was not written"));
    case kFaultInstance:
      return absl::InvalidArgumentError(absl::StrCat("batch row ", row, " names residency-cache instance ",
                                                     fault.index, ", which does not exist"));
    default:
      break;
  }
  if (fault.index < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("token index ", fault.index, " at ", where, " is below -1, the padding value"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "token index ", fault.index, " at batch row ", row, ", position ", fault.position, " is past the ",
      row < tokens.size() ? tokens[row] : 0, " tokens written to sequence ", sequence, " (layer ", layer,
      ") or the cache's max_tokens"));
}

}  // namespace sparsepool::kernels
