// A whole small file (a config, a tenants file, a PEM certificate) as text.
#ifndef SPARSEPOOL_COMMON_FILE_TEXT_H_
#define SPARSEPOOL_COMMON_FILE_TEXT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparsepool {

// NotFound naming `what` and the path when the file cannot be read.
absl::StatusOr<std::string> ReadFileText(const std::string& path, absl::string_view what);

// Writes `text` to PATH.tmp and renames it over `path`: a reader, or a crash, sees the
// old file or the new one, never half of one. Internal naming the file that failed.
absl::Status WriteFileTextAtomically(const std::string& path, absl::string_view text);

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_FILE_TEXT_H_
