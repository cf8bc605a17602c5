// The plain CPU reference every GPU gather is checked against: for each batch row and
// position, the entry at the row's page table, or nothing for padding.
#ifndef SPARSEPOOL_KERNELS_CPU_REFERENCE_H_
#define SPARSEPOOL_KERNELS_CPU_REFERENCE_H_

#include <cstring>
#include <vector>

#include "kernels/gather_types.h"

namespace sparsepool::kernels {

// `pages[row]` are host copies of each row's page offsets. Bad indices are skipped.
inline void ReferenceGather(const std::byte* region, const std::vector<RowPages>& rows,
                            const std::vector<std::vector<uint64_t>>& pages,
                            const std::vector<int32_t>& indices, uint32_t k,
                            uint32_t entry_bytes, std::byte* out) {
  for (size_t row = 0; row < rows.size(); ++row) {
    for (uint32_t i = 0; i < k; ++i) {
      const int32_t index = indices[row * k + i];
      if (index < 0 || static_cast<uint64_t>(index) >= rows[row].tokens) continue;
      const uint64_t offset = pages[row][index / rows[row].page_tokens] +
                              uint64_t(index % rows[row].page_tokens) * rows[row].entry_stride;
      std::memcpy(out + (row * k + i) * entry_bytes, region + offset, entry_bytes);
    }
  }
}

}  // namespace sparsepool::kernels

#endif  // SPARSEPOOL_KERNELS_CPU_REFERENCE_H_
