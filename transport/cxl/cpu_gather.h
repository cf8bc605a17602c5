// The CPU's side of the CXL data path: plain loads and stores between a mapped region
// and a caller's buffer. No checks: callers validate first (DataPlane does).
#ifndef SPARSEPOOL_TRANSPORT_CXL_CPU_GATHER_H_
#define SPARSEPOOL_TRANSPORT_CXL_CPU_GATHER_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "common/layout.h"

namespace sparsepool {

// Copies entry (layer, indices[i]) of `seq` to out + i * entry_bytes for every i whose
// index is not -1. `region_base` is where seq's region is mapped.
void CpuGatherRow(const std::byte* region_base, const SequenceLayout& seq, uint32_t layer,
                  absl::Span<const int32_t> indices, std::byte* out);

// Stores entries of tokens [first_token, first_token + count) of one layer.
void CpuScatterRange(std::byte* region_base, const SequenceLayout& seq, uint32_t layer,
                     uint64_t first_token, uint64_t count, const std::byte* entries);

}  // namespace sparsepool

#endif  // SPARSEPOOL_TRANSPORT_CXL_CPU_GATHER_H_
