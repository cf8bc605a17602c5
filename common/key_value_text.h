// The "KEY = VALUE" text the daemon's config file and the benchmark's model file use:
// one setting per line, '#' starts a comment, blank lines are skipped.
#ifndef SPARSEPOOL_COMMON_KEY_VALUE_TEXT_H_
#define SPARSEPOOL_COMMON_KEY_VALUE_TEXT_H_

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sparsepool {

// Calls `apply` for each setting in order and stops at the first error, which comes
// back prefixed with "source:line: ", as does a line without '='.
absl::Status ForEachKeyValueLine(
    absl::string_view text, absl::string_view source,
    absl::FunctionRef<absl::Status(absl::string_view key, absl::string_view value)> apply);

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_KEY_VALUE_TEXT_H_
