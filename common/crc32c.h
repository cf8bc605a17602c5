// CRC-32C (Castagnoli), the checksum of every metadata structure in a region.
// Uses the SSE4.2 instruction where the build targets it, a table otherwise.
#ifndef SPARSEPOOL_COMMON_CRC32C_H_
#define SPARSEPOOL_COMMON_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace sparsepool {

// Extends `crc` (0 for a fresh checksum) over `size` bytes at `data`.
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_CRC32C_H_
