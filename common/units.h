// Parsing of the human-written quantities in flags and config files.
#ifndef SPARSEPOOL_COMMON_UNITS_H_
#define SPARSEPOOL_COMMON_UNITS_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace sparsepool {

// "4096", "64KiB", "512MiB", "4GiB", "1TiB" (also K/M/G/T and KB/MB/GB/TB, all binary).
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);
// 4294967296 -> "4.00 GiB".
std::string FormatBytes(uint64_t bytes);

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_UNITS_H_
