#include "transport/rdma/read_plan.h"

#include <algorithm>

namespace sparsepool {

std::vector<ReadRequest> PlanReads(const GatherBatch& batch, bool coalesce) {
  std::vector<ReadRequest> reads;
  const size_t rows = batch.sequences.size();
  if (rows == 0) return reads;
  const size_t k = batch.indices.size() / rows;
  for (size_t row = 0; row < rows; ++row) {
    const SequenceLayout& seq = *batch.sequences[row];
    const uint32_t entry = seq.entry_bytes;
    const int32_t* indices = batch.indices.data() + row * k;
    size_t i = 0;
    while (i < k) {
      if (indices[i] < 0) {
        ++i;
        continue;
      }
      const uint64_t first = static_cast<uint64_t>(indices[i]);
      size_t run = 1;
      while (coalesce && seq.entry_stride == entry && i + run < k &&
             indices[i + run] == static_cast<int32_t>(first + run) &&
             (first + run) / seq.page_tokens == first / seq.page_tokens) {
        ++run;
      }
      reads.push_back(ReadRequest{static_cast<uint32_t>(row), seq.LayerRegion(batch.layer).remote_base + seq.EntryOffset(batch.layer, first),
                                  static_cast<uint32_t>(run * entry), (row * k + i) * entry});
      i += run;
    }
  }
  return reads;
}

std::vector<ReadRequest> PlanWrites(const WriteRange& range) {
  const SequenceLayout& seq = *range.sequence;
  const uint32_t entry = seq.entry_bytes;
  const uint64_t count = range.entries.size() / entry;
  std::vector<ReadRequest> writes;
  uint64_t token = range.first_token;
  while (token < range.first_token + count) {
    const uint64_t run = seq.entry_stride == entry
                             ? std::min(range.first_token + count - token, seq.TokensLeftInPage(token))
                             : 1;
    writes.push_back(ReadRequest{0, seq.LayerRegion(range.layer).remote_base + seq.EntryOffset(range.layer, token),
                                 static_cast<uint32_t>(run * entry), (token - range.first_token) * entry});
    token += run;
  }
  return writes;
}

std::vector<PostGroup> GroupForDoorbells(size_t reads, uint32_t max_outstanding) {
  std::vector<PostGroup> groups;
  const size_t size = std::max<uint32_t>(1, max_outstanding);
  for (size_t first = 0; first < reads; first += size) {
    groups.push_back(PostGroup{first, std::min(size, reads - first)});
  }
  return groups;
}

}  // namespace sparsepool
